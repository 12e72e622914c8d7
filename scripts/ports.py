"""TCP ports as Linux's /proc shows them: who listens on a port, and whether the processes the dev
runner started are the ones answering there. Used by ``scripts/dev.py`` and its tests."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_LISTEN = "0A"  # the TCP state number /proc/net/tcp shows for a listening socket


@dataclass(frozen=True)
class Listener:
    address: Address
    inode: int


def _address(field: str) -> Address:
    # The kernel prints each 32-bit word of the address in host (little-endian) byte order.
    raw = bytes.fromhex(field)
    swapped = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(swapped)


def listeners(port: int) -> list[Listener]:
    """The listening TCP sockets bound to ``port``, IPv4 and IPv6."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue  # no IPv6 on this machine
        for line in lines:
            fields = line.split()
            address, _, port_hex = fields[1].partition(":")
            if fields[3] == _LISTEN and int(port_hex, 16) == port:
                found.append(Listener(_address(address), int(fields[9])))
    return found


def _parse(host: str) -> Address | None:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host)
    return None


def reaches(listener: Listener, host: str) -> bool:
    """Whether a request to ``host`` (or to localhost, which the printed URLs name) could land
    on this listener: it is on a loopback or wildcard address, or on ``host``'s own."""
    address = listener.address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    wanted = _parse(host)
    return (
        address.is_loopback
        or address.is_unspecified
        or address == wanted
        or (wanted is not None and wanted.is_unspecified)
    )


def socket_owners(inodes: Collection[int]) -> dict[int, list[int]]:
    """Socket inode -> the live processes holding it open (those this user may look into)."""
    links = {f"socket:[{inode}]": inode for inode in inodes}
    owners: dict[int, list[int]] = {inode: [] for inode in inodes}
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            for fd in os.scandir(proc / "fd"):
                with contextlib.suppress(OSError):
                    if (inode := links.get(os.readlink(fd.path))) is not None:
                        owners[inode].append(int(proc.name))
    return owners


def _name(pid: int) -> str:
    try:
        return f"{Path(f'/proc/{pid}/comm').read_text().strip()} (pid {pid})"
    except OSError:
        return f"pid {pid}"


def _holders(found: list[Listener]) -> Iterator[str]:
    for pids in socket_owners([listener.inode for listener in found]).values():
        yield from map(_name, sorted(pids))


def taken(host: str, port: int) -> str | None:
    """Why the runner cannot serve ``port`` on ``host`` (what holds it), or None when free."""
    found = [listener for listener in listeners(port) if reaches(listener, host)]
    if found:
        holders = sorted(set(_holders(found)))
        return "is taken" + (f" by {', '.join(holders)}" if holders else " by another program")
    family = socket.AF_INET6 if isinstance(_parse(host), ipaddress.IPv6Address) else socket.AF_INET
    with socket.socket(family) as sock:
        # As the servers will bind it: connections that are merely closing do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            return f"cannot be bound on {host}: {error.strerror or error}"
    return None


def _sockets_of(pids: Collection[int]) -> set[str]:
    held = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.scandir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    held.add(os.readlink(fd.path))
    return held


def answered_by(host: str, port: int, pids: Collection[int]) -> bool:
    """Whether every socket listening where a request to ``host:port`` could land is held by
    ``pids``, and there is one: a connection there then reaches those processes, no other."""
    found = [listener for listener in listeners(port) if reaches(listener, host)]
    held = _sockets_of(pids)
    return bool(found) and all(f"socket:[{listener.inode}]" in held for listener in found)
