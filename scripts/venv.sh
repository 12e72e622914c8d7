# Sourced by run.sh and test.sh: a virtualenv ($VENV, default .venv) with the project and its
# development dependencies installed. Needs only python3 (3.11+) on the machine, or $PYTHON.
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  # Said here, before pip fails on a dependency that merely has no release for an older Python.
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    found="$("$PYTHON" --version 2>/dev/null || true)"
    echo "calls-batch-get needs Python 3.11 or newer; $PYTHON is ${found:-not found}." \
      "Set PYTHON to a newer interpreter." >&2
    exit 1
  fi
  "$PYTHON" -m venv "$VENV"
fi
# requirements.txt first: the suite runs on exactly the versions a deploy installs.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r requirements.txt -e '.[dev]'
