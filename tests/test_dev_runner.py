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

from scripts.dev import cors_origins_with, load_dotenv
from scripts.localdb import REPO_ROOT

EXPORT = re.compile(r"^  export (?P<name>[A-Z_]+)=(?P<value>\S+)")
SCREEN = re.compile(r"^  (?P<url>http://localhost:\d+/batch-screen\.html#\S+)$")
DATA_DIR = re.compile(r"host=(?P<dir>\S+)")
README_PORT = "localhost:8080"
# A README line that ends in "# 404" is expected to answer 404.
EXPECTED_STATUS = re.compile(r"#\s*(?P<status>[1-5][0-9]{2})\s*$")


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
    def __init__(self, port: int, screen_port: int) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT")}
        self.process = subprocess.Popen(
            [sys.executable, "scripts/dev.py", "--port", str(port), "--screen-port",
             str(screen_port)],
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


def readme_curl_lines() -> list[str]:
    """The README's one-line shell examples against the local function."""
    lines = (REPO_ROOT / "README.md").read_text().splitlines()
    return [
        line for line in lines
        if README_PORT in line and line.startswith(("curl ", "ETAG=")) and not line.endswith("\\")
    ]


def run_readme_lines(port: int, exports: dict[str, str]) -> list[tuple[str, str]]:
    """Each README line run as written by one bash (so ETAG=… carries on), on our port; returns
    each line with the status line it printed."""
    lines = readme_curl_lines()
    script = "\n".join(
        f"echo '@@@'; {line.replace(README_PORT, f'localhost:{port}')}" for line in lines
    )
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={**os.environ, **exports},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    outputs = result.stdout.split("@@@\n")[1:]
    return [
        (line, out.splitlines()[0] if out else "")
        for line, out in zip(lines, outputs, strict=True)
    ]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_dev_runner_serves_demo_data_and_stops_cleanly(stop_signal: signal.Signals) -> None:
    port = free_port()
    runner = Runner(port, free_port())
    try:
        data_dir = Path(runner.wait_for(DATA_DIR)["dir"])
        matches = [runner.wait_for(EXPORT) for _ in range(3)]
        exports = {match["name"]: match["value"] for match in matches}
        assert set(exports) == {"TOKEN", "BATCH_ID", "OTHER_BATCH_ID"}
        screen = runner.wait_for(SCREEN)["url"]
        assert f"batch_id={exports['BATCH_ID']}" in screen

        headers = {"Authorization": f"Bearer {exports['TOKEN']}"}
        url = f"http://localhost:{port}/"
        response = httpx.get(
            url, params={"batch_id": exports["BATCH_ID"], "contact_limit": 5}, headers=headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"batch", "contacts", "contact_pagination"}
        assert body["batch"]["id"] == exports["BATCH_ID"]
        assert 0 < len(body["contacts"]) <= 5
        assert body["contact_pagination"]["total"] == body["batch"]["total_contacts"]
        assert body["contact_pagination"]["has_more"] is True

        response = httpx.get(url, params={"batch_id": exports["OTHER_BATCH_ID"]}, headers=headers)
        assert (response.status_code, response.json()) == (
            404, {"error": "Batch not found", "code": "batch_not_found"}
        )
        # The screen's page comes from its own origin.
        page = httpx.get(screen.partition("#")[0])
        assert page.status_code == 200
        assert page.headers["Content-Type"].startswith("text/html")
        assert processes_using(data_dir), "the embedded server is not where it says"

        if stop_signal == signal.SIGINT:  # once is enough for the README
            checked = [
                (line, status_line, match["status"])
                for line, status_line in run_readme_lines(port, exports)
                if (match := EXPECTED_STATUS.search(line))
            ]
            assert len(checked) >= 7, "the README's status examples are gone"
            for line, status_line, status in checked:
                assert status_line.split()[1] == status, (line, status_line)

        runner.process.send_signal(stop_signal)
        runner.process.wait(60)
    finally:
        if runner.process.poll() is None:
            runner.process.kill()
    assert processes_using(data_dir) == []
    assert not data_dir.exists()


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# a comment\n\nDATABASE_URL=postgresql://from-file/db\nLOG_LEVEL=debug\n"
        "CORS_ALLOW_ORIGINS='https://app.example.com'\nexport DB_TIMEOUT_SECONDS=\"3\"\n"
        "SUPABASE_JWT_SECRET=\nnot a setting\n"
    )
    environ = {"LOG_LEVEL": "WARNING"}
    load_dotenv(dotenv, environ)
    assert environ == {
        "DATABASE_URL": "postgresql://from-file/db",
        "LOG_LEVEL": "WARNING",
        "CORS_ALLOW_ORIGINS": "https://app.example.com",
        "DB_TIMEOUT_SECONDS": "3",
        "SUPABASE_JWT_SECRET": "",
    }
    load_dotenv(tmp_path / "absent", environ)  # no file, no change, no error


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        (None, None),
        ("*", "*"),
        ("https://app.example.com", "https://app.example.com,http://localhost:8081"),
    ],
)
def test_the_screen_origin_joins_a_configured_cors_list(
    configured: str | None, expected: str | None
) -> None:
    assert cors_origins_with("http://localhost:8081", configured) == expected
