#!/usr/bin/env bash
# Install shoal into .venv if needed (versions from requirements/lock.txt) and start the server
# (arguments go to `shoal serve`), with /demo built and switched on: open the printed /demo/ URL.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check -c requirements/lock.txt)
if [ ! -x .venv/bin/shoal ]; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  "${PIP[@]}" pip setuptools
  "${PIP[@]}" -e .
fi
# The /demo page: the official ts-client bundled from web/package-lock.json (needs Node.js and npm).
if command -v npm >/dev/null; then
  if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules ]; then
    (cd web && npm ci --no-audit --no-fund --loglevel=error)
  fi
  node web/build.mjs >/dev/null
else
  echo "serve.sh: npm not found: /demo is not built (the server and /dashboard work without it)" >&2
fi
# --demo lets /demo make rooms without the management token: for trying shoal out on this machine.
exec .venv/bin/shoal serve --demo "$@"
