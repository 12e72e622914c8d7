#!/usr/bin/env bash
# The default run command: the function on http://localhost:8080/ over a throwaway PostgreSQL
# with demo data (or DATABASE_URL), the batch screen on http://localhost:8081/, a .env read if
# present. Needs only python3 (3.11+). Installs into .venv-run (or $RUN_VENV) only what running
# needs, and only when that changed. Arguments go to scripts/dev.py (./run.sh --help).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/run_venv.sh
exec "$VENV/bin/python" scripts/dev.py "$@"
