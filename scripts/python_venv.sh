# Sourced by venv.sh and run_venv.sh: creates the virtualenv $VENV unless it is there, with
# $PYTHON (default python3), which must be 3.11 or newer.
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
