#!/usr/bin/env bash
# The default run command: the function on http://127.0.0.1:8080/ over a throwaway PostgreSQL
# with demo data (or DATABASE_URL). Needs only python3 (3.11+). Arguments go to scripts/dev.py.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh
exec "$VENV/bin/python" scripts/dev.py "$@"
