#!/usr/bin/env bash
# Mutation testing (scripts/mutation.py; arguments go to it) in a virtualenv of its own, since
# mutmut brings setproctitle, which renames gunicorn's processes: the suite's own virtualenv stays
# what a deploy installs.
set -euo pipefail
cd "$(dirname "$0")/.."
export VENV="${MUTATION_VENV:-.venv-mutation}"
source scripts/venv.sh
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev,mutation]'
exec "$VENV/bin/python" -m scripts.mutation "$@"
