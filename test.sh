#!/usr/bin/env bash
# The test command: installs what the project needs into a virtualenv, then runs the suite.
# Needs only python3 (3.11+); the tests start their own throwaway PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
exec "$VENV/bin/python" -m pytest "$@"
