#!/usr/bin/env bash
# Install shoal into .venv if needed (versions from requirements/lock.txt) and start the server
# (arguments go to `shoal serve`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check -c requirements/lock.txt)
if [ ! -x .venv/bin/shoal ]; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  "${PIP[@]}" pip setuptools
  "${PIP[@]}" -e .
fi
exec .venv/bin/shoal serve "$@"
