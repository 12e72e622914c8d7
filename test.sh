#!/usr/bin/env bash
# The test command: installs what the project needs into a virtualenv (and the npm packages of
# clients/typescript, from its lock file), then runs the suite (arguments go to pytest). The
# tests start their own throwaway PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh
lock=clients/typescript/package-lock.json
installed=clients/typescript/node_modules/.package-lock.json
if [ ! -f "$installed" ] || [ "$lock" -nt "$installed" ]; then
  npm ci --prefix clients/typescript --no-audit --no-fund --loglevel=error
fi
exec "$VENV/bin/python" -m pytest "$@"
