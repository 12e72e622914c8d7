"""A loopback TCP proxy in front of PostgreSQL that holds every answer from the server for a set
time before passing it on: the database as if it were a few milliseconds away, as it is from a
Cloud Function in another zone. One round trip of the protocol gains the delay once, however many
chunks the answer comes in (each chunk leaves at its own arrival plus the delay, in order)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable

from tests.wire_proxy import Address


class DelayProxy:
    """Listens on a free loopback port (``port``) on a thread of its own; ``delay`` is read as
    each answer arrives, so it may change while the proxy runs."""

    def __init__(
        self, family: socket.AddressFamily, upstream: Address, delay: Callable[[], float]
    ) -> None:
        self._family = family
        self._upstream = upstream
        self._delay = delay
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._run, name="delay-proxy", daemon=True)

    def start(self) -> DelayProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the delay proxy did not start")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._link, "127.0.0.1", 0)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._family == socket.AF_UNIX:
            assert isinstance(self._upstream, str)
            return await asyncio.open_unix_connection(self._upstream)
        assert isinstance(self._upstream, tuple)
        return await asyncio.open_connection(*self._upstream)

    async def _link(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        server_in, server_out = await self._open_upstream()
        with contextlib.suppress(OSError):
            sock = client_out.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        tasks = [
            asyncio.create_task(_pipe(client_in, server_out)),
            asyncio.create_task(self._receive(server_in, queue)),
            asyncio.create_task(_release(queue, client_out)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_out, server_out):
            writer.close()

    async def _receive(
        self, reader: asyncio.StreamReader, queue: asyncio.Queue[tuple[float, bytes]]
    ) -> None:
        while chunk := await reader.read(65536):
            queue.put_nowait((time.monotonic() + self._delay(), chunk))
        queue.put_nowait((time.monotonic() + self._delay(), b""))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while chunk := await reader.read(65536):
        writer.write(chunk)
        await writer.drain()


async def _release(queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter) -> None:
    while True:
        due, chunk = await queue.get()
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if not chunk:
            return
        writer.write(chunk)
        await writer.drain()
