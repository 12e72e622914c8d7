"""The function served by the real ``functions-framework`` command (gunicorn, its worker, the
lot) in a process group of its own, on any installed Python, with its output kept line by line.

Interpreters other than the test run's own get a virtualenv of the deployment's requirements
(``requirements.txt``) under ``.venv-functions/``, made once and reused while that file is
unchanged; a Python that is not installed is skipped, with the reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.localdb import REPO_ROOT

VENVS = REPO_ROOT / ".venv-functions"
REQUIREMENTS = REPO_ROOT / "requirements.txt"
START_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _interpreter(version: str) -> str | None:
    # pyenv's own install first: its shim on PATH answers only for the selected versions.
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"))
    if candidates:
        return str(candidates[-1])
    found = shutil.which(f"python{version}")
    return found if found and "/shims/" not in found else None


def functions_framework_for(version: str) -> Path:
    """The ``functions-framework`` command on Python ``version`` (e.g. "3.13")."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return Path(sys.executable).parent / "functions-framework"
    python = _interpreter(version)
    if python is None:
        pytest.skip(f"Python {version} is not installed here")
    return deployment_venv(python, VENVS / version) / "bin" / "functions-framework"


def deployment_venv(python: str, venv: Path) -> Path:
    """A virtualenv at ``venv`` of ``python`` with exactly what a deploy installs
    (``requirements.txt``, none of the development tools), made again when that file changes."""
    stamp = venv / "requirements.sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != wanted:
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        installed = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
             "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
            capture_output=True, text=True,
        )
        if installed.returncode:  # pip's warnings only when they explain a failure
            raise RuntimeError(f"pip install failed:\n{installed.stdout}{installed.stderr}")
        stamp.write_text(wanted)
    return venv


class FunctionProcess:
    """``functions-framework --target calls_batch_get`` with the given environment."""

    def __init__(self, command: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process = subprocess.Popen(
            [str(command), "--target", "calls_batch_get", "--source", "main.py",
             "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO_ROOT,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Its own group: the tests stop the function as a whole (gunicorn's worker too).
            start_new_session=True,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._drain, args=(stream, lines), daemon=True)
            for stream, lines in ((self.process.stdout, self.stdout),
                                  (self.process.stderr, self.stderr))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _drain(stream: Any, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def wait_until_serving(self) -> FunctionProcess:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "\n".join(self.stderr)
            with contextlib.suppress(httpx.HTTPError):
                if httpx.options(self.url, timeout=1).status_code == 204:
                    return self
            time.sleep(0.1)
        raise AssertionError(f"the function did not serve within {START_TIMEOUT_SECONDS}s")

    def terminate(self, timeout: float = 30.0) -> float:
        """SIGTERM to gunicorn's arbiter, as Cloud Run sends it; the seconds until it exited."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout)
        return time.monotonic() - started

    def output(self) -> list[str]:
        """Every line written to stdout and stderr so far (all of it once the process ended)."""
        if self.process.poll() is not None:
            for reader in self._readers:
                reader.join(5)
        return [*self.stdout, *self.stderr]

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@contextlib.contextmanager
def running_function(command: Path, env: dict[str, str]) -> Iterator[FunctionProcess]:
    function = FunctionProcess(command, env)
    try:
        yield function.wait_until_serving()
    finally:
        function.kill()


def log_records(lines: list[str]) -> list[dict[str, Any]]:
    """Each line as the JSON object it must be, with a severity."""
    records = []
    for line in lines:
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert record.get("severity") in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), line
        records.append(record)
    return records
