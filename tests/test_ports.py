"""scripts/ports.py against the kernel's own tables: real sockets, this process and a child."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from scripts import ports


def listening(host: str, port: int = 0) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family)
    sock.bind((host, port))
    sock.listen()
    return sock


def ipv6_loopback() -> bool:
    try:
        listening("::1").close()
    except OSError:
        return False
    return True


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = listening("127.0.0.1")
    yield sock
    sock.close()


def test_a_listening_socket_is_found_with_its_address(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    (found,) = ports.listeners(port)
    assert found.address == ipaddress.ip_address("127.0.0.1")
    assert os.fstat(listener.fileno()).st_ino == found.inode


def test_a_connected_socket_is_no_listener(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port)) as client:
        accepted, _ = listener.accept()
        with accepted:
            # Only the listening socket, not the two ends of the connection on the same port.
            assert len(ports.listeners(port)) == 1
            assert client.getpeername()[1] == port


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
def test_an_ipv6_address_is_read_word_by_word() -> None:
    with listening("::1") as sock:
        (found,) = ports.listeners(sock.getsockname()[1])
    assert found.address == ipaddress.ip_address("::1")


@pytest.mark.parametrize(
    ("address", "host", "reached"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("::1", "127.0.0.1", True),  # curl's localhost tries ::1 first
        ("0.0.0.0", "127.0.0.1", True),  # noqa: S104
        ("::", "127.0.0.1", True),
        ("::ffff:127.0.0.1", "127.0.0.1", True),
        ("192.0.2.7", "127.0.0.1", False),
        ("192.0.2.7", "192.0.2.7", True),
        ("192.0.2.7", "0.0.0.0", True),  # noqa: S104 - ours, everywhere, would meet it
    ],
)
def test_which_listeners_a_request_could_reach(address: str, host: str, reached: bool) -> None:
    listener = ports.Listener(ipaddress.ip_address(address), inode=1)
    assert ports.reaches(listener, host) is reached


def test_a_taken_port_names_its_holder(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    reason = ports.taken("127.0.0.1", port)
    assert reason is not None
    assert f"(pid {os.getpid()})" in reason


def test_a_free_port_is_free() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert ports.taken("127.0.0.1", port) is None


def test_an_address_not_of_this_machine_cannot_be_bound() -> None:
    reason = ports.taken("192.0.2.7", 8080)  # TEST-NET-1: never a local address
    assert reason is not None
    assert reason.startswith("cannot be bound on 192.0.2.7")


def test_the_port_is_answered_by_the_processes_holding_its_socket(
    listener: socket.socket,
) -> None:
    port = listener.getsockname()[1]
    assert ports.answered_by("127.0.0.1", port, [os.getpid()])
    # A child that holds no socket of the port: not the one answering.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not ports.answered_by("127.0.0.1", port, [child.pid])
    finally:
        child.kill()
        child.wait()


def test_a_second_listener_elsewhere_on_localhost_is_not_ours(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    other = subprocess.Popen(
        [sys.executable, "-c",
         "import socket, sys, time\n"
         f"s = socket.socket(socket.AF_INET6); s.bind(('::1', {port})); s.listen()\n"
         "print('up', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert other.stdout is not None
        assert other.stdout.readline() == "up\n"
        # Our socket on 127.0.0.1 is not all a request to localhost could reach.
        assert not ports.answered_by("127.0.0.1", port, [os.getpid()])
        reason = ports.taken("127.0.0.1", port)
        assert reason is not None
        assert f"(pid {other.pid})" in reason
    finally:
        other.kill()
        other.wait()


def test_nothing_listening_is_not_answered() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert not ports.answered_by("127.0.0.1", port, [os.getpid()])
