#!/usr/bin/env bash
# The test command: installs what the project needs into a virtualenv, then runs the suite
# (arguments go to pytest). The tests start their own throwaway PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh
exec "$VENV/bin/python" -m pytest "$@"
