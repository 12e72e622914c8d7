"""Processes as /proc shows them (Linux): for stopping a process group, finding a server's
processes, and checking that nothing was left behind. Shared by the runner, tests and bench."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Process:
    pid: int
    state: str
    ppid: int
    pgid: int
    cmdline: bytes

    @property
    def alive(self) -> bool:
        return self.state != "Z"  # a zombie has ended; only its exit status is left


def processes() -> Iterator[Process]:
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            # The command name (in parentheses) may hold spaces: the fields after it are fixed.
            state, ppid, pgid = (proc / "stat").read_text().rpartition(")")[2].split()[:3]
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue  # ended meanwhile
        yield Process(int(proc.name), state, int(ppid), int(pgid), cmdline + b"\0")


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group."""
    return [p.pid for p in processes() if p.pgid == pgid and p.alive]


def processes_naming(*needles: bytes) -> list[int]:
    """Live processes whose command line (arguments ending in NUL) holds every needle."""
    return [p.pid for p in processes() if p.alive and all(n in p.cmdline for n in needles)]


def server_processes(data_dir: Path) -> list[int]:
    """A PostgreSQL server: its postmaster (named by its data directory) and its children."""
    postmasters = set(processes_naming(str(data_dir).encode()))
    return [*postmasters, *(p.pid for p in processes() if p.ppid in postmasters)]


def signal_all(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _group_stats(pgid: int) -> Iterator[list[str]]:
    """The /proc/<pid>/stat fields after the command name, of each process in a group."""
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError):
            fields = (proc / "stat").read_text().rpartition(")")[2].split()
            if int(fields[2]) == pgid:
                yield fields


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) of every live process in a process group, threads included."""
    ticks = sum(int(fields[11]) + int(fields[12]) for fields in _group_stats(pgid))
    return ticks / os.sysconf("SC_CLK_TCK")


def group_rss_bytes(pgid: int) -> int:
    """Resident memory of every live process in a process group, added up."""
    return sum(int(fields[21]) for fields in _group_stats(pgid)) * os.sysconf("SC_PAGE_SIZE")
