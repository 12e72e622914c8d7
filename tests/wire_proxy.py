"""A loopback TCP proxy in front of PostgreSQL that records the direction of the traffic and
can stop forwarding (a frozen server, a partition), for the round-trip and fault tests."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

Direction = Literal["to_server", "to_client"]
# A unix socket's path, or a TCP host and port.
Address = str | tuple[str, int]
# Every blocking step of the proxy (connect, send, stop) gives up after this long, so that a
# broken test fails instead of hanging the run.
SOCKET_TIMEOUT_SECONDS = 5.0
CHUNK = 65536
# The frontend's Flush message: type 'H', length 4, no body.
FLUSH = b"H\x00\x00\x00\x04"


@dataclass
class _Link:
    """One client connection and the server connection the proxy opened for it."""

    index: int
    client: socket.socket
    server: socket.socket


class WireProxy:
    """A loopback TCP proxy, on a thread of its own, that records the direction of the traffic.

    ``runs()`` gives, per proxied connection, the directions of the traffic since ``mark()``
    with repeats collapsed: ``["to_server", "to_client"]`` is one round trip.
    """

    upstream_is_unix: bool

    def __init__(self, upstream_family: socket.AddressFamily, upstream_address: Address) -> None:
        self._upstream_family = upstream_family
        self._upstream_address = upstream_address
        # PostgreSQL encrypts nothing on a unix socket (it refuses SSL and GSS requests there),
        # so the bytes the proxy sees are then the protocol's messages in the clear.
        self.upstream_is_unix = upstream_family == socket.AF_UNIX
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        # Writing a byte here wakes the thread out of select() to stop it, without polling.
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        self._runs: dict[int, list[tuple[Direction, bytearray]]] = {}
        self._frozen = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="wire-proxy", daemon=True)

    @property
    def accepted(self) -> int:
        """How many client connections the proxy has taken so far."""
        with self._lock:
            return len(self._links)

    def start(self) -> WireProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.ident is not None:  # started
            self._wake_writer.send(b"x")
            self._thread.join(SOCKET_TIMEOUT_SECONDS)
            assert not self._thread.is_alive(), "the proxy thread did not stop"
        for link in self._links:
            link.client.close()
            link.server.close()
        for sock in (self._listener, self._wake_reader, self._wake_writer):
            sock.close()
        self._selector.close()

    def freeze(self) -> None:
        """Stops forwarding in both directions, as a frozen server or a partition would: bytes
        wait in the kernel's buffers and nothing comes back. New connections are still taken."""
        self._command(b"f")

    def thaw(self) -> None:
        self._command(b"t")

    def _command(self, command: bytes) -> None:
        with self._lock:
            self._done.clear()
        self._wake_writer.send(command)
        # The proxy thread owns the selector: the command is in effect once it says so.
        assert self._done.wait(SOCKET_TIMEOUT_SECONDS), "the proxy thread did not answer"

    def mark(self) -> None:
        """Starts a new measurement: forgets the traffic seen so far."""
        with self._lock:
            self._runs.clear()

    def runs(self) -> dict[int, list[Direction]]:
        with self._lock:
            return {i: [d for d, _ in runs] for i, runs in self._runs.items()}

    def flights(self) -> dict[int, int]:
        """Per connection, how many times the client started sending since ``mark()``."""
        return {i: runs.count("to_server") for i, runs in self.runs().items()}

    def round_trips(self) -> dict[int, int]:
        """Per connection, the flights since ``mark()`` that the server answered."""
        return {i: sum(1 for d in runs[:-1] if d == "to_server") for i, runs in self.runs().items()}

    def received(self) -> bytes:
        """Every byte the server sent to the clients since ``mark()``."""
        with self._lock:
            return b"".join(
                bytes(data)
                for runs in self._runs.values()
                for direction, data in runs
                if direction == "to_client"
            )

    def unanswered(self) -> dict[int, bytes]:
        """Per connection, the bytes of a last flight that no answer followed (else b"")."""
        with self._lock:
            return {
                i: bytes(runs[-1][1]) if runs and runs[-1][0] == "to_server" else b""
                for i, runs in self._runs.items()
            }

    def _serve(self) -> None:
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        while True:
            # The timeout only bounds each wait; stopping is signalled through the wake socket.
            for key, _ in self._selector.select(timeout=1.0):
                if key.fileobj is self._wake_reader:
                    command = self._wake_reader.recv(1)
                    if command == b"x":
                        return
                    self._set_frozen(command == b"f")
                    self._done.set()
                    break  # the selector changed under the events of this round
                if key.fileobj is self._listener:
                    self._accept()
                else:
                    link, direction = key.data
                    self._relay(link, direction)

    def _set_frozen(self, frozen: bool) -> None:
        if frozen == self._frozen:
            return
        self._frozen = frozen
        for link in self._links:
            if link.client.fileno() < 0:
                continue  # closed
            for sock, direction in ((link.client, "to_server"), (link.server, "to_client")):
                # A link may have closed, or been accepted while frozen (never registered).
                with contextlib.suppress(KeyError, ValueError, OSError):
                    if frozen:
                        self._selector.unregister(sock)
                    else:
                        self._selector.register(sock, selectors.EVENT_READ, (link, direction))

    def _accept(self) -> None:
        client, _ = self._listener.accept()
        server = socket.socket(self._upstream_family, socket.SOCK_STREAM)
        for sock in (client, server):
            sock.settimeout(SOCKET_TIMEOUT_SECONDS)
        try:
            server.connect(self._upstream_address)
        except OSError:
            client.close()
            server.close()
            return
        with self._lock:
            link = _Link(len(self._links), client, server)
            self._links.append(link)
        if not self._frozen:
            self._selector.register(client, selectors.EVENT_READ, (link, "to_server"))
            self._selector.register(server, selectors.EVENT_READ, (link, "to_client"))

    def _relay(self, link: _Link, direction: Direction) -> None:
        source, target = (
            (link.client, link.server) if direction == "to_server" else (link.server, link.client)
        )
        if source.fileno() < 0:
            return  # closed by the other direction's event earlier in this round
        try:
            chunk = source.recv(CHUNK)
            if chunk:
                # Noted before it is passed on: once the client has its answer, the log
                # already holds every byte of the exchange, so the test needs no waiting.
                self._note(link.index, direction, chunk)
                target.sendall(chunk)
                return
        except OSError:
            pass
        # One side closed (or failed): so does the other, as it would without the proxy.
        for sock in (link.client, link.server):
            self._selector.unregister(sock)
            sock.close()

    def _note(self, index: int, direction: Direction, chunk: bytes) -> None:
        with self._lock:
            runs = self._runs.setdefault(index, [])
            if not runs or runs[-1][0] != direction:
                runs.append((direction, bytearray()))
            runs[-1][1].extend(chunk)


def upstream_of(database_url: str) -> tuple[socket.AddressFamily, Address]:
    """Where the proxy should connect: the server's unix socket, or its TCP address.

    Asked of a live connection: libpq has then resolved the defaults (socket directory, port,
    environment, several hosts) exactly as the store's own connections do.
    """
    with psycopg.connect(database_url) as conn:
        host, port = conn.info.host, conn.info.port
    if host.startswith("/"):
        return socket.AF_UNIX, f"{host}/.s.PGSQL.{port}"
    return socket.AF_INET6 if ":" in host else socket.AF_INET, (host, port)


def proxied_url(database_url: str, port: int) -> str:
    """The same connection settings (database, user, password, ssl) with the proxy as host."""
    params = conninfo_to_dict(database_url)
    for name in ("host", "hostaddr", "port"):
        params.pop(name, None)
    # A URI, not key=value: the function's settings accept only postgresql:// URLs.
    return f"postgresql://127.0.0.1:{port}/?{urlencode({k: str(v) for k, v in params.items()})}"


@pytest.fixture
def proxy(database_url: str) -> Iterator[WireProxy]:
    family, address = upstream_of(database_url)
    wire = WireProxy(family, address).start()
    yield wire
    wire.stop()
