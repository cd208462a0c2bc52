#!/usr/bin/env bash
# Install everything the tests need into project-local environments, then run every check.
# Usage: scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
DEBIAN_PACKAGES="chromium coturn nftables iproute2 conntrack redis-server"
# Every Python package comes at the version in requirements/lock.txt (refresh: scripts/lock.sh).
PIP=(-m pip install -q --disable-pip-version-check -c requirements/lock.txt)

echo "== installing shoal and its development tools into .venv"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python "${PIP[@]}" pip setuptools
.venv/bin/python "${PIP[@]}" -e '.[dev,pipecat]'

echo "== installing the official Python SDK ($(cat requirements/official-sdk.txt)) into .venv-official"
# It also imports as 'fishjam', so it lives in its own environment.
[ -x .venv-official/bin/python ] || "$PY" -m venv .venv-official
.venv-official/bin/python "${PIP[@]}" pip setuptools
.venv-official/bin/python "${PIP[@]}" -r requirements/official-sdk.txt

echo "== installing the official JS server SDK (tests/js/package-lock.json) into tests/js/node_modules"
(cd tests/js && npm ci --no-audit --no-fund)

echo "== installing Debian packages: $DEBIAN_PACKAGES"
# chromium: browser tests; coturn: TURN tests (tests/net, tests/shoal/test_ice_options.py);
# nftables, iproute2: the network-namespace tests (tests/net); conntrack: their NAT rebinding test;
# redis-server: the cluster tests (tests/cluster), which start and stop their own.
missing=()
for package in $DEBIAN_PACKAGES; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    apt_log=$(mktemp)
    if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
            --no-install-recommends "${missing[@]}"; } >"$apt_log" 2>&1; then
        cat "$apt_log" >&2
        echo "installing ${missing[*]} with apt-get failed" >&2
        exit 1
    fi
    rm -f "$apt_log"
fi

echo "== installing the official browser client (tests/browser/package-lock.json) into tests/browser/node_modules"
# The page is bundled per test session (tests/browser/conftest.py runs build.mjs with esbuild).
(cd tests/browser && npm ci --no-audit --no-fund)

echo "== installing the /demo page's packages (web/package-lock.json) into web/node_modules"
# tests/browser/test_demo_dashboard.py bundles the page (web/build.mjs) before opening it.
(cd web && npm ci --no-audit --no-fund)

echo "== checks: installed versions match the lock, generated protobuf code, ruff, mypy"
.venv/bin/python scripts/check_lock.py .venv/bin/python .venv-official/bin/python
.venv/bin/python scripts/gen_protos.py --check
.venv/bin/ruff check src tests benchmarks scripts examples
.venv/bin/mypy

echo "== tests"
export FISHJAM_OFFICIAL_PYTHON="$PWD/.venv-official/bin/python"
exec .venv/bin/python -m pytest -q "$@"
