"""The order a mutant's tests run in under mutmut (tests.mutation_session.py): the whole round's
time is how soon each mutant's first failing test comes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.mutation_session import (
    fastest_first,
    mutant_under_test,
    own_module,
    record_session,
    recorded_durations,
)

MUTANT = "calls_batch_get.store.postgres.xǁPostgresStoreǁread__mutmut_3"


def test_the_mutated_modules_own_tests_come_first_then_the_fastest() -> None:
    nodeids = [
        "tests/test_scenarios.py::test_slow",
        "tests/test_endpoint.py::test_quick",
        "tests/test_postgres_store.py::test_slower_own",
        "tests/test_never_timed.py::test_new",
        "tests/test_postgres_store.py::test_quick_own",
        "tests/test_scenarios.py::test_quicker",
    ]
    durations = {
        "tests/test_scenarios.py::test_slow": 2.5,
        "tests/test_endpoint.py::test_quick": 0.01,
        "tests/test_postgres_store.py::test_slower_own": 0.3,
        "tests/test_postgres_store.py::test_quick_own": 0.02,
        "tests/test_scenarios.py::test_quicker": 0.2,
    }
    order = [nodeids[i] for i in fastest_first(nodeids, MUTANT, durations)]
    assert order == [
        "tests/test_postgres_store.py::test_quick_own",
        "tests/test_postgres_store.py::test_slower_own",
        "tests/test_endpoint.py::test_quick",
        "tests/test_scenarios.py::test_quicker",
        "tests/test_scenarios.py::test_slow",
        "tests/test_never_timed.py::test_new",
    ]


@pytest.mark.parametrize(("mutant", "module"), [
    (MUTANT, "postgres"),
    ("calls_batch_get.cursor.x_decode__mutmut_2", "cursor"),
    ("calls_batch_get.store.xǁStoreErrorǁ__init____mutmut_1", "store"),
])
def test_a_mutants_module_is_the_last_part_of_its_dotted_name(mutant: str, module: str) -> None:
    assert own_module(mutant) == module


@pytest.mark.parametrize("value", ["", "stats", "fail", "list_all_tests", "mutant_generation"])
def test_mutmuts_own_runs_are_not_a_mutant(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MUTANT_UNDER_TEST", value)
    assert mutant_under_test() is None


def test_a_mutant_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUTANT_UNDER_TEST", raising=False)
    assert mutant_under_test() is None
    monkeypatch.setenv("MUTANT_UNDER_TEST", MUTANT)
    assert mutant_under_test() == MUTANT


def test_the_durations_are_mutmuts_stats_or_none(tmp_path: Path) -> None:
    stats = tmp_path / "mutmut-stats.json"
    assert recorded_durations(stats) == {}
    stats.write_text("{not json")
    assert recorded_durations(stats) == {}
    stats.write_text(json.dumps({"duration_by_test": {"tests/test_a.py::test_b": 0.5}}))
    assert recorded_durations(stats) == {"tests/test_a.py::test_b": 0.5}


def test_each_mutants_session_is_one_line_of_its_own(tmp_path: Path) -> None:
    times = tmp_path / "mutant-times.jsonl"
    record_session(MUTANT, 1.23456, 7, 1, times)
    record_session("calls_batch_get.cursor.x_decode__mutmut_2", 0.5, 73, 0, times)
    assert [json.loads(line) for line in times.read_text().splitlines()] == [
        {"mutant": MUTANT, "seconds": 1.235, "tests": 7, "exit": 1},
        {"mutant": "calls_batch_get.cursor.x_decode__mutmut_2", "seconds": 0.5, "tests": 73,
         "exit": 0},
    ]
