"""The default run command end to end: real server, real HTTP, clean shutdown."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from scripts.dev import cors_origins_with, load_dotenv
from scripts.localdb import REPO_ROOT
from scripts.processes import group_members, processes_naming, server_processes, signal_all

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
    """Live processes whose command line names ``path``."""
    return processes_naming(str(path).encode())


def function_processes(port: int) -> list[int]:
    """The function's processes (gunicorn's arbiter and worker) serving ``port``."""
    return processes_naming(b"functions-framework\0", f"--port\0{port}\0".encode())


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # As a server restarting on it would: connections of the test in TIME_WAIT don't count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def sockets_on(port: int) -> list[str]:
    """The kernel's TCP sockets bound to ``port`` and their states (hex, as /proc shows them)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rpartition(":")[2], 16) == port:
                found.append(f"{fields[1]} -> {fields[2]} state {fields[3]} inode {fields[9]}")
    return found


def poll(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def get_ignoring_failure(url: str, headers: dict[str, str]) -> None:
    # Whatever becomes of the stuck request is not the point (the function is killed under it).
    with contextlib.suppress(httpx.HTTPError):
        httpx.get(url, headers=headers, timeout=120)


class Runner:
    def __init__(self, port: int, screen_port: int, **env_overrides: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT")}
        self.port = port
        self.process = subprocess.Popen(
            [sys.executable, "scripts/dev.py", "--port", str(port), "--screen-port",
             str(screen_port)],
            cwd=REPO_ROOT,
            env={**env, **env_overrides},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # A group of its own, so that a failing test can kill the runner and all it started.
            start_new_session=True,
        )
        self.data_dir: Path | None = None
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

    def kill_everything(self) -> None:
        """After a failure: no runner, function or database may outlive the test."""
        server = server_processes(self.data_dir) if self.data_dir else []
        signal_all(server, signal.SIGCONT)
        for pids in ([-self.process.pid], function_processes(self.port), server):
            signal_all(pids, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)


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
@pytest.mark.parametrize(
    ("stop_signal", "stuck"), [(signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["ctrl-c-with-a-request-stuck-on-a-frozen-database", "sigterm"],
)
def test_dev_runner_serves_demo_data_and_stops_cleanly(
    stop_signal: signal.Signals, stuck: bool
) -> None:
    port = free_port()
    # A budget long enough that the request is still stuck when the runner is stopped.
    runner = Runner(port, free_port(), DB_TIMEOUT_SECONDS="60")
    try:
        data_dir = runner.data_dir = Path(runner.wait_for(DATA_DIR)["dir"])
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
        # The function's process group, taken now: after the stop, another program (a parallel
        # benchmark's server) may bind the freed port and look like the function by its name.
        (group,) = {os.getpgid(pid) for pid in function_processes(runner.port)}

        if stop_signal == signal.SIGINT:  # once is enough for the README
            checked = [
                (line, status_line, match["status"])
                for line, status_line in run_readme_lines(port, exports)
                if (match := EXPECTED_STATUS.search(line))
            ]
            assert len(checked) >= 7, "the README's status examples are gone"
            for line, status_line, status in checked:
                assert status_line.split()[1] == status, (line, status_line)

        if stuck:
            signal_all(server_processes(data_dir), signal.SIGSTOP)
            own = f"{url}?batch_id={exports['BATCH_ID']}"
            threading.Thread(target=get_ignoring_failure, args=(own, headers),
                             daemon=True).start()
            time.sleep(0.5)  # the request is on its way to the frozen server; nothing answers
        runner.process.send_signal(stop_signal)
        # The function goes first, as a whole, while the database may still be frozen.
        assert poll(lambda: not group_members(group), 30), group_members(group)
        # Sockets of the port may take a moment to leave the kernel after their process is gone.
        assert poll(lambda: port_is_free(runner.port), 10), sockets_on(runner.port)
        signal_all(server_processes(data_dir), signal.SIGCONT)
        runner.process.wait(60)
    finally:
        if runner.process.poll() is None or function_processes(runner.port):
            runner.kill_everything()
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
