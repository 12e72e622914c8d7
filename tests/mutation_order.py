"""The order a mutant's tests run in under mutmut: the mutated module's own test files first,
then the fastest tests first.

mutmut runs a mutant's tests with ``-x`` in the order of a set, so a mutant that a 5 ms unit test
kills often waited for a dozen slow endpoint scenarios first. Most mutants are killed, so the
whole round's time is mostly how soon the first failing test comes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from scripts.mutation import module_of

# mutmut runs the tests from its mutants/ directory, next to its stats (each test's duration).
STATS = Path(__file__).resolve().parent.parent / "mutmut-stats.json"
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
