"""The default run command end to end: real server, real HTTP, clean shutdown."""

from __future__ import annotations

import contextlib
import json
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest

from scripts import ports
from scripts.dev import checkout_secret, cors_origins_with, load_dotenv
from scripts.localdb import REPO_ROOT
from scripts.processes import (
    group_members,
    processes,
    processes_naming,
    server_processes,
    signal_all,
)

EXPORT = re.compile(r"^  export (?P<name>[A-Z_]+)=(?P<value>\S+)")
EXPORTS = {"TOKEN", "NO_AGENCY_TOKEN", "EXPIRED_TOKEN", "BATCH_ID", "OTHER_BATCH_ID"}
SCREEN = re.compile(r"^  (?P<url>http://localhost:\d+/batch-screen\.html#\S+)$")
# A curl line the runner prints, with the status (and error code) it says it answers.
PRINTED_CURL = re.compile(r"^  (?P<line>curl .*)  # (?P<status>\d{3})(?: (?P<code>[a-z_]+))?$")
DATA_DIR = re.compile(r"host=(?P<dir>\S+)")
SERVER_ROOT = re.compile(r"^Starting an embedded PostgreSQL in (?P<root>/\S+?)…$")
READY = re.compile(r"^Ready: ")
EVERYWHERE = "0.0.0.0"  # noqa: S104 - what --host is told in one test
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


def processes_of(root: Path) -> list[int]:
    """Live processes of a server directory: naming it, or working in it (as backends do)."""
    found = []
    for process in processes():
        try:
            cwd = os.readlink(f"/proc/{process.pid}/cwd")
        except OSError:
            cwd = ""
        in_root = cwd == str(root) or cwd.startswith(f"{root}/")
        if process.alive and (str(root).encode() in process.cmdline or in_root):
            found.append(process.pid)
    return found


class Runner:
    def __init__(
        self, port: int, screen_port: int, *args: str, **env_overrides: str
    ) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT")}
        self.port = port
        self.process = subprocess.Popen(
            [sys.executable, "scripts/dev.py", "--port", str(port), "--screen-port",
             str(screen_port), *args],
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

    def rest(self, timeout: float = 60) -> list[str]:
        """Every line until the runner exits (which it must within ``timeout``)."""
        self.process.wait(timeout)
        time.sleep(0.2)  # the drain's last lines
        while not self.lines.empty():
            self.output.append(self.lines.get())
        return self.output

    def exports(self) -> dict[str, str]:
        matches = [self.wait_for(EXPORT) for _ in EXPORTS]
        return {match["name"]: match["value"] for match in matches}

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
        exports = runner.exports()
        assert set(exports) == EXPORTS
        screen = runner.wait_for(SCREEN)["url"]
        # Not reachable from the network unless asked (--host): the function and the screen.
        for bound in (port, int(screen.split(":")[2].split("/")[0])):
            assert {str(found.address) for found in ports.listeners(bound)} == {"127.0.0.1"}
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


# --- A stop at any moment of the start ------------------------------------------------------


def child_running(runner: Runner, *needles: bytes) -> bool:
    """Whether a child of the runner (initdb, pg_ctl) runs with every needle in its command."""
    return any(
        process.ppid == runner.process.pid and process.alive
        and all(needle in process.cmdline for needle in needles)
        for process in processes()
    )


def line_printed(pattern: str) -> Callable[[Runner, Path], None]:
    def reach(runner: Runner, root: Path) -> None:
        runner.wait_for(re.compile(pattern))
    return reach


def child_started(*needles: bytes) -> Callable[[Runner, Path], None]:
    def reach(runner: Runner, root: Path) -> None:
        assert poll_fast(lambda: child_running(runner, *needles, str(root).encode()), 60), (
            f"no {needles} ran", "".join(runner.output),
        )
    return reach


def function_started(runner: Runner, root: Path) -> None:
    assert poll_fast(lambda: bool(function_processes(runner.port)), 60), "".join(runner.output)


def poll_fast(condition: Callable[[], bool], timeout: float) -> bool:
    # initdb's and pg_ctl's runs are short: looked for every 10 ms, not to miss them.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


# Each stage of the start, reached as it is happening: by the process doing it or the line
# announcing it.
STAGES: dict[str, Callable[[Runner, Path], None]] = {
    "initdb": child_started(b"/initdb\0"),
    "pg_ctl-start": child_started(b"/pg_ctl\0", b"start\0"),
    "server-up": line_printed(r"^PostgreSQL: "),
    "migrations": line_printed(r"^Applying migrations…"),
    "demo-data": line_printed(r"^Loading demo data"),
    "function-role": line_printed(r"^The function connects as"),
    "function-booting": function_started,
}
# As a terminal's Ctrl-C does: to the runner's whole process group (initdb and pg_ctl too);
# SIGTERM, as `kill` does: to the runner alone.
STOPS = {"ctrl-c": (signal.SIGINT, True, 130), "sigterm": (signal.SIGTERM, False, 143)}


@pytest.mark.timeout(150)
@pytest.mark.parametrize("stop", list(STOPS))
@pytest.mark.parametrize("stage", list(STAGES))
def test_a_stop_at_any_stage_of_the_start_leaves_no_process_and_no_directory(
    stage: str, stop: str
) -> None:
    stop_signal, to_group, status = STOPS[stop]
    runner = Runner(free_port(), free_port())
    root: Path | None = None
    try:
        root = Path(runner.wait_for(SERVER_ROOT)["root"])
        runner.data_dir = root / "pgdata"
        STAGES[stage](runner, root)
        function_groups = {os.getpgid(pid) for pid in function_processes(runner.port)}
        if to_group:
            os.killpg(runner.process.pid, stop_signal)
        else:
            runner.process.send_signal(stop_signal)
        output = "".join(runner.rest(60))
        assert runner.process.returncode == status, output
        assert not READY.search(output)
        # Nothing of it is left: its group (initdb, pg_ctl), the server's processes (pg_ctl
        # detaches the postmaster), the function's group, the port, the server's directory.
        assert group_members(runner.process.pid) == []
        assert processes_of(root) == [], output
        assert all(group_members(group) == [] for group in function_groups)
        assert function_processes(runner.port) == []
        assert poll(lambda: port_is_free(runner.port), 10), sockets_on(runner.port)
        assert not root.exists(), (sorted(root.rglob("*")), output)
    finally:
        if runner.process.poll() is None or function_processes(runner.port):
            runner.kill_everything()


# --- The port: checked before anything starts, and Ready only when it is the function's ----


def hold_port(address: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family)
    sock.bind((address, 0))
    sock.listen()
    return sock


def ipv6_loopback() -> bool:
    try:
        hold_port("::1").close()
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    ("option", "address"),
    [
        ("--port", "127.0.0.1"),
        ("--port", "0.0.0.0"),  # noqa: S104 - another program listening everywhere
        # Binding 127.0.0.1 would work, but curl's localhost would reach the other program.
        pytest.param("--port", "::1", marks=pytest.mark.skipif(
            not ipv6_loopback(), reason="no IPv6 loopback here")),
        ("--screen-port", "127.0.0.1"),
    ],
)
def test_a_taken_port_is_one_line_and_a_failure_before_anything_starts(
    option: str, address: str
) -> None:
    with hold_port(address) as held:
        taken = held.getsockname()[1]
        ports_given = {"--port": free_port(), "--screen-port": free_port(), option: taken}
        runner = Runner(ports_given["--port"], ports_given["--screen-port"])
        try:
            output = runner.rest(30)
        finally:
            if runner.process.poll() is None:
                runner.kill_everything()
    assert runner.process.returncode == 1
    (line,) = output  # nothing started, nothing else said
    assert line.startswith(f"calls-batch-get: port {taken} is taken by ")
    assert f"(pid {os.getpid()})" in line
    assert f"choose another {option}" in line


class _Decoy(BaseHTTPRequestHandler):
    """Another program on the port that answers anything as the function would: only who
    holds the socket tells them apart."""

    def do_GET(self) -> None:
        batch_id = parse_qs(urlsplit(self.path).query).get("batch_id", [""])[0]
        body = json.dumps({"batch": {"id": batch_id}, "contacts": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.timeout(120)
def test_a_port_taken_during_the_start_is_never_called_ready() -> None:
    port = free_port()
    runner = Runner(port, free_port())
    decoy: ThreadingHTTPServer | None = None
    try:
        root = Path(runner.wait_for(SERVER_ROOT)["root"])  # past the check of the port
        runner.data_dir = root / "pgdata"
        decoy = ThreadingHTTPServer(("127.0.0.1", port), _Decoy)
        threading.Thread(target=decoy.serve_forever, daemon=True).start()
        output = runner.rest(90)
    finally:
        if runner.process.poll() is None or function_processes(port):
            runner.kill_everything()
        if decoy is not None:
            decoy.shutdown()
            decoy.server_close()
    text = "".join(output)
    assert runner.process.returncode == 1, text
    assert not READY.search(text)
    assert f"the function exited during start-up (code 1): port {port} is taken by " in text
    assert f"(pid {os.getpid()})" in text
    assert processes_of(root) == []
    assert not root.exists()


# --- Tokens for every state, the same secret after a restart, --host ------------------------


def run_printed_curl(lines: list[str], exports: dict[str, str]) -> list[tuple[str, str]]:
    """Each printed curl line run by bash as pasted; returns each line's status line and body."""
    results = []
    for line in lines:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", line], env={**os.environ, **exports},
            capture_output=True, text=True, timeout=30, check=True,
        )
        # Text mode reads the header lines' CRLF as LF.
        head, _, body = result.stdout.partition("\n\n")
        results.append((head.splitlines()[0], body))
    return results


@pytest.mark.timeout(180)
def test_tokens_for_every_state_signed_by_a_secret_kept_across_restarts(tmp_path: Path) -> None:
    secret_file = tmp_path / "jwt-secret"
    # A secret of the environment (or of a developer's .env) would be used instead of the file.
    keep = {"SUPABASE_JWT_SECRET": ""}
    first = Runner(free_port(), free_port(), "--secret-file", str(secret_file), **keep)
    try:
        exports = first.exports()
        assert set(exports) == EXPORTS
        printed = [first.wait_for(PRINTED_CURL) for _ in range(4)]
        screens = [first.wait_for(SCREEN)["url"] for _ in range(3)]
        expected = [(m["status"], m["code"]) for m in printed]
        assert sorted(expected) == sorted(
            [("200", None), ("404", "batch_not_found"), ("403", "no_agency"),
             ("401", "token_expired")]
        )
        for match, (status_line, body) in zip(
            printed, run_printed_curl([m["line"] for m in printed], exports), strict=True
        ):
            assert status_line.split()[1] == match["status"], (match["line"], status_line)
            if match["code"]:
                assert json.loads(body)["code"] == match["code"]
        # The screen's three links carry the three tokens.
        for url, name in zip(screens, ("TOKEN", "NO_AGENCY_TOKEN", "EXPIRED_TOKEN"), strict=True):
            assert parse_qs(url.partition("#")[2])["token"] == [exports[name]]
        assert secret_file.stat().st_mode & 0o777 == 0o600
        secret = secret_file.read_text()
        first.process.send_signal(signal.SIGTERM)
        first.rest(60)
    finally:
        if first.process.poll() is None or function_processes(first.port):
            first.kill_everything()

    port = free_port()
    # Told otherwise, it listens on every interface, and says so.
    second = Runner(port, free_port(), "--secret-file", str(secret_file), "--host", EVERYWHERE,
                    **keep)
    try:
        ready = second.wait_for(READY).string
        assert f"listening on {EVERYWHERE}: reachable from the network" in ready
        assert {str(found.address) for found in ports.listeners(port)} == {EVERYWHERE}
        assert second.exports()["BATCH_ID"] == exports["BATCH_ID"]
        url = f"http://localhost:{port}/"
        answers = {
            name: httpx.get(url, params={"batch_id": exports["BATCH_ID"]},
                            headers={"Authorization": f"Bearer {exports[name]}"})
            for name in ("TOKEN", "NO_AGENCY_TOKEN", "EXPIRED_TOKEN")
        }
        # The first run's tokens, pasted before the restart, still verify.
        assert answers["TOKEN"].status_code == 200, answers["TOKEN"].text
        assert answers["NO_AGENCY_TOKEN"].json()["code"] == "no_agency"
        assert answers["EXPIRED_TOKEN"].json()["code"] == "token_expired"
        assert secret_file.read_text() == secret
        second.process.send_signal(signal.SIGTERM)
        second.rest(60)
    finally:
        if second.process.poll() is None or function_processes(second.port):
            second.kill_everything()


def test_the_checkout_secret_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    secret = checkout_secret(path)
    assert len(secret) >= 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert checkout_secret(path) == secret
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]  # no draft left
    path.write_text("\n")  # emptied: there is nothing to keep
    renewed = checkout_secret(path)
    assert renewed
    assert renewed != secret


# --- DATABASE_URL: the function's role is changed only when asked -------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "say how the function connects: --function-url URL"),
        (("--function-url", "postgresql://calls_batch_get:pw@127.0.0.1:1/postgres",
          "--reset-function-password"), "exclude each other"),
    ],
    ids=["neither", "both"],
)
def test_with_a_database_url_the_function_role_is_left_alone_unless_asked(
    args: tuple[str, ...], message: str
) -> None:
    # Port 1: nothing may be attempted on this server, not even a connection.
    runner = Runner(free_port(), free_port(), *args,
                    DATABASE_URL="postgresql://postgres@127.0.0.1:1/postgres")
    try:
        output = runner.rest(30)
    finally:
        if runner.process.poll() is None:
            runner.kill_everything()
    assert runner.process.returncode == 1
    (line,) = output
    assert message in line


@pytest.mark.timeout(120)
def test_with_a_database_url_and_a_function_url_the_role_keeps_its_password(
    fresh_database: Callable[[], str], function_url_of: Callable[[str], str]
) -> None:
    admin_url = fresh_database()
    function_url = function_url_of(admin_url)
    port = free_port()
    runner = Runner(port, free_port(), "--function-url", function_url, DATABASE_URL=admin_url)
    try:
        runner.wait_for(re.compile(r"^The function connects with the URL given"))
        exports = runner.exports()
        response = httpx.get(f"http://localhost:{port}/", params={"batch_id": exports["BATCH_ID"]},
                             headers={"Authorization": f"Bearer {exports['TOKEN']}"})
        assert response.status_code == 200, response.text
        runner.process.send_signal(signal.SIGTERM)
        runner.rest(60)
    finally:
        if runner.process.poll() is None or function_processes(port):
            runner.kill_everything()
    # What else logs in as the function's role (the session's other tests here; a deployed
    # function on a real project) still can.
    with psycopg.connect(function_url) as conn:
        assert conn.execute("select current_user").fetchone() == ("calls_batch_get",)
