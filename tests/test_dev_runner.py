"""The default run command end to end: real server, real HTTP, clean shutdown."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from scripts.localdb import REPO_ROOT

CURL = re.compile(r'curl .*-H "Authorization: Bearer (?P<token>[^"]+)" "(?P<url>[^"]+)"')
DATA_DIR = re.compile(r"host=(?P<dir>\S+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def processes_using(path: Path) -> list[int]:
    """Live processes whose command line names ``path`` (zombies have none)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(path).encode() in cmdline:
            pids.append(int(proc.name))
    return pids


class Runner:
    def __init__(self, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT")}
        self.process = subprocess.Popen(
            [sys.executable, "scripts/dev.py", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        # Drained all along, so that the function's log never fills the pipe and blocks it.
        threading.Thread(target=self._drain, daemon=True).start()
        self.output: list[str] = []

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 90) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.process.poll() is None, "".join(self.output)
                continue
            self.output.append(line)
            if match := pattern.search(line):
                return match
        raise AssertionError(f"no {pattern.pattern!r} in:\n{''.join(self.output)}")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_dev_runner_serves_demo_data_and_stops_cleanly(stop_signal: signal.Signals) -> None:
    runner = Runner(free_port())
    try:
        data_dir = Path(runner.wait_for(DATA_DIR)["dir"])
        own, other = runner.wait_for(CURL), runner.wait_for(CURL)

        headers = {"Authorization": f"Bearer {own['token']}"}
        response = httpx.get(own["url"], headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"batch", "contacts", "contact_pagination"}
        assert body["batch"]["id"] in own["url"]
        assert 0 < len(body["contacts"]) <= 5
        assert body["contact_pagination"]["total"] == body["batch"]["total_contacts"]
        assert body["contact_pagination"]["has_more"] is True

        response = httpx.get(other["url"], headers=headers, timeout=10)
        assert (response.status_code, response.json()) == (
            404, {"error": "Batch not found", "code": "batch_not_found"}
        )
        assert processes_using(data_dir), "the embedded server is not where it says"

        runner.process.send_signal(stop_signal)
        runner.process.wait(60)
    finally:
        if runner.process.poll() is None:
            runner.process.kill()
    assert processes_using(data_dir) == []
    assert not data_dir.exists()
