#!/usr/bin/env bash
# Refresh requirements/lock.txt: resolve shoal[dev,pipecat] and the official Python SDK together in a
# throwaway venv (so one set of versions satisfies both), and write every installed version.
# Run after changing a range in pyproject.toml or requirements/official-sdk.txt; commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check '.[dev,pipecat]' -r requirements/official-sdk.txt
{
    echo "# Every package the server, the SDK, the official SDKs and the tests install, at one version each."
    echo "# Made by scripts/lock.sh with $("$tmp/venv/bin/python" -V); used as a pip constraints file (-c)"
    echo "# by scripts/serve.sh and scripts/test.sh. Do not edit by hand."
    "$tmp/venv/bin/python" -m pip freeze --all --disable-pip-version-check | grep -v -i -E '^(shoal|fishjam-server-sdk)( |=|@)' | LC_ALL=C sort -f
} > requirements/lock.txt
echo "requirements/lock.txt: $(grep -vc '^#' requirements/lock.txt) packages"
