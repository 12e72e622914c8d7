"""The supabase-py store's DB_TIMEOUT_SECONDS is one deadline for a read, over a real socket: a
PostgREST that answers a byte at a time (each byte inside httpx's per-read timeout) fails the read
once the budget is spent, not when the trickle ends."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from uuid import uuid4

import pytest

from calls_batch_get.instance import create_store
from calls_batch_get.params import BatchQuery
from calls_batch_get.settings import load_settings
from calls_batch_get.store import StoreError
from calls_batch_get.store.supabase import create_supabase_store
from tests.tokens import caller_of

BUDGET = 1.0
SLACK = 1.0
# The trickle lasts well past budget + slack, so that a per-phase timeout cannot pass the test.
TRICKLE_SECONDS = 6.0
BYTE_EVERY_SECONDS = 0.25


def _trickle(conn: socket.socket, stop: threading.Event) -> None:
    with conn, contextlib.suppress(OSError):
        conn.recv(65536)
        body_length = int(TRICKLE_SECONDS / BYTE_EVERY_SECONDS) + 2
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(body_length).encode() + b"\r\n\r\n["
        )
        for _ in range(body_length - 2):
            if stop.wait(BYTE_EVERY_SECONDS):
                return
            conn.sendall(b" ")
        conn.sendall(b"]")


@pytest.fixture
def trickling_postgrest() -> Iterator[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            while not stop.is_set():
                conn, _ = listener.accept()
                threading.Thread(target=_trickle, args=(conn, stop), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()


def test_a_trickling_answer_fails_the_read_within_the_budget(trickling_postgrest: str) -> None:
    store = create_supabase_store(trickling_postgrest, "key", BUDGET)
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as caught:
            store.read(caller_of(uuid4()), BatchQuery(batch_id=uuid4()))
        elapsed = time.monotonic() - started
    finally:
        store.close()
    assert caught.value.message == "Failed to fetch batch"
    assert BUDGET - 0.1 <= elapsed <= BUDGET + SLACK


def test_the_instances_store_takes_its_budget_from_the_settings(trickling_postgrest: str) -> None:
    """DB_TIMEOUT_SECONDS, not a default of the store's own, is what the deployed store keeps."""
    settings = load_settings({
        "SUPABASE_URL": trickling_postgrest, "SUPABASE_ANON_KEY": "sb_publishable_test",
        "DB_TIMEOUT_SECONDS": str(BUDGET),
    })
    store = create_store(settings)
    try:
        started = time.monotonic()
        with pytest.raises(StoreError):
            store.read(caller_of(uuid4()), BatchQuery(batch_id=uuid4()))
        elapsed = time.monotonic() - started
    finally:
        store.close()
    assert BUDGET - 0.1 <= elapsed <= BUDGET + SLACK
