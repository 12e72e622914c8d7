#!/usr/bin/env bash
# The default run command: the function on http://127.0.0.1:8080/ over a throwaway PostgreSQL
# with demo data (or DATABASE_URL). Needs only python3 (3.11+). Arguments go to scripts/dev.py.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
exec "$VENV/bin/python" scripts/dev.py "$@"
