"""A mutant's test session under mutmut: the order its tests run in, and the record of what it
cost.

mutmut runs a mutant's tests with ``-x`` in the order of a set, so a mutant that a 5 ms unit test
kills often waited for a dozen slow endpoint scenarios first: here the mutated module's own test
files run first, then the fastest tests. And mutmut 3.8.1 records no mutant's duration when it
forks them, so each session appends its own to ``mutant-times.jsonl`` beside mutmut's stats,
which ``scripts/mutation.py --report`` reads to name where a round's time went.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from scripts.mutation import module_of

# mutmut runs the tests from its mutants/ directory, next to its stats (each test's duration).
STATS = Path(__file__).resolve().parent.parent / "mutmut-stats.json"
TIMES = STATS.with_name("mutant-times.jsonl")
# What mutmut sets MUTANT_UNDER_TEST to when no mutant is active (its own set-up runs).
NOT_A_MUTANT = frozenset({"", "fail", "stats", "list_all_tests", "mutant_generation"})


def mutant_under_test() -> str | None:
    name = os.environ.get("MUTANT_UNDER_TEST", "")
    return None if name in NOT_A_MUTANT else name


def recorded_durations(stats: Path = STATS) -> dict[str, float]:
    try:
        durations: dict[str, float] = json.loads(stats.read_text())["duration_by_test"]
    except (OSError, ValueError, KeyError):
        return {}
    return durations


def own_module(mutant: str) -> str:
    """``calls_batch_get.store.postgres.xǁPostgresStoreǁread__mutmut_3`` -> ``postgres``."""
    return module_of(mutant).rpartition(".")[2]


def fastest_first(nodeids: Sequence[str], mutant: str,
                  durations: Mapping[str, float]) -> list[int]:
    """The indexes of ``nodeids`` in the order to run them: tests in a file named after the
    mutated module (test_cursor.py for cursor.py) first, then by recorded duration; a test
    without one last, since it is new or was never timed."""
    module = own_module(mutant)

    def key(index: int) -> tuple[bool, float]:
        nodeid = nodeids[index]
        test_file = nodeid.partition("::")[0].rpartition("/")[2]
        return module not in test_file, durations.get(nodeid, float("inf"))

    return sorted(range(len(nodeids)), key=key)


def record_session(mutant: str, seconds: float, tests_run: int, exit_status: int,
                   times: Path = TIMES) -> None:
    """Appends one line per mutant, in one write to a file opened for appending: the lines of
    mutants running at once do not interleave."""
    line = json.dumps({"mutant": mutant, "seconds": round(seconds, 3), "tests": tests_run,
                       "exit": exit_status})
    with times.open("a") as file:
        file.write(line + "\n")
