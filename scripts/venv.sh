# Sourced by run.sh and test.sh: a virtualenv ($VENV, default .venv) with the project and its
# development dependencies installed. Needs only python3 (3.11+) on the machine.
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
