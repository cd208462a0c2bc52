#!/usr/bin/env bash
# Install everything the tests need into project-local environments, then run every check.
# Usage: scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
OFFICIAL_PY_SDK="fishjam-server-sdk==0.31.1"

echo "== installing shoal and its development tools into .venv"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'

echo "== installing the official Python SDK ($OFFICIAL_PY_SDK) into .venv-official"
# It also imports as 'fishjam', so it lives in its own environment.
[ -x .venv-official/bin/python ] || "$PY" -m venv .venv-official
.venv-official/bin/python -m pip install -q --disable-pip-version-check "$OFFICIAL_PY_SDK"

echo "== installing the official JS server SDK (tests/js/package-lock.json) into tests/js/node_modules"
(cd tests/js && npm ci --no-audit --no-fund)

echo "== installing Chromium (Debian package chromium) for the browser tests"
if [ ! -x /usr/bin/chromium ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    apt_log=$(mktemp)
    if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
            --no-install-recommends chromium; } >"$apt_log" 2>&1; then
        cat "$apt_log" >&2
        echo "installing chromium with apt-get failed" >&2
        exit 1
    fi
    rm -f "$apt_log"
fi

echo "== installing the official browser client (tests/browser/package-lock.json) into tests/browser/node_modules"
# The page is bundled per test session (tests/browser/conftest.py runs build.mjs with esbuild).
(cd tests/browser && npm ci --no-audit --no-fund)

echo "== checks: generated protobuf code, ruff, mypy"
.venv/bin/python scripts/gen_protos.py --check
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/mypy

echo "== tests"
export FISHJAM_OFFICIAL_PYTHON="$PWD/.venv-official/bin/python"
exec .venv/bin/python -m pytest -q "$@"
