# Sourced by test.sh and scripts/mutation.sh: a virtualenv ($VENV, default .venv) with the
# project and its development dependencies installed. Needs only python3 (3.11+), or $PYTHON.
VENV="${VENV:-.venv}"
source "$(dirname "${BASH_SOURCE[0]}")/python_venv.sh"
# requirements.txt first: the suite runs on exactly the versions a deploy installs.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r requirements.txt -e '.[dev]'
