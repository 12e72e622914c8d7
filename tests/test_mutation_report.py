"""scripts/mutation.py's tally: what counts as killed, as equivalent, as left and as not run,
so that the score printed after a round means what docs/testing.md says it does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.mutation import (
    Equivalent,
    confirmed,
    module_of,
    mutations,
    report,
    session_times,
    tally,
    time_report,
)

PG = "calls_batch_get.store.postgres.xǁPostgresStoreǁread__mutmut_"
CURSOR = "calls_batch_get.cursor.x_decode__mutmut_"


def test_a_timeout_and_a_survivor_are_left_an_equivalent_is_not_counted() -> None:
    verdicts = {
        f"{PG}1": "killed",
        f"{PG}2": "killed",
        f"{PG}3": "caught by type check",
        f"{PG}4": "survived",
        f"{PG}5": "timeout",
        f"{PG}6": "survived",
        f"{PG}7": "not checked",
        f"{CURSOR}1": "killed",
    }
    tallies = tally(verdicts, {f"{PG}6": Equivalent("why it changes nothing", "x = 2")}, [])
    postgres = tallies["store.postgres"]
    assert (postgres.total, postgres.killed, postgres.equivalent, postgres.not_run) == (6, 3, 1, 1)
    # A timeout is not a kill: on a busy machine a survivor running all its tests times out too.
    assert postgres.survivors == [f"{PG}4", f"{PG}5"]
    assert postgres.score == pytest.approx(60.0)
    assert tallies["cursor"].score == 100.0


def test_only_the_modules_asked_for_are_tallied() -> None:
    verdicts = {f"{PG}1": "killed", f"{CURSOR}1": "survived"}
    assert list(tally(verdicts, {}, ["cursor"])) == ["cursor"]


def test_a_listed_equivalent_that_is_killed_or_now_another_mutation_is_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    verdicts = {f"{PG}1": "killed", f"{PG}2": "survived", f"{PG}3": "survived"}
    current = {f"{PG}1": "a = 1", f"{PG}2": "b = 2", f"{PG}3": "c = 4"}
    listed = {
        f"{PG}1": Equivalent("no longer", "a = 1"),
        f"{PG}2": Equivalent("still", "b = 2"),
        # Renumbered: the name now names another mutation, which this reason does not excuse.
        f"{PG}3": Equivalent("renumbered", "c = 3"),
        f"{PG}9": Equivalent("gone", "d = 1"),
    }
    equivalent, changed = confirmed(listed, current)
    assert list(equivalent) == [f"{PG}1", f"{PG}2"]
    assert changed == [f"{PG}3", f"{PG}9"]
    report(tally(verdicts, equivalent, []), verdicts, equivalent, changed, current)
    out = capsys.readouterr().out
    assert "store.postgres       3      1      1     1   50.0%        0" in out
    assert "(equivalent: 1, of which 0 set aside, not run)" in out
    assert f"  survived   {PG}3: c = 4" in out
    assert f"listed as equivalent but killed: {PG}1" in out
    assert f"listed as equivalent but now 'c = 4': {PG}3" in out
    assert f"listed as equivalent but now 'gone': {PG}9" in out
    assert f"{PG}2" not in out


MUTATED_MODULE = """\
def x_f__mutmut_orig(a):
    if a > 1:
        return 1
    return 2

def x_f__mutmut_1(a):
    if a >= 1:
        return 1
    return 2

def x_f__mutmut_2(a):
    if a > 1:
        return 1

class C:
    def xǁCǁg__mutmut_orig(self):
        return "x"

    def xǁCǁg__mutmut_1(self):
        return "XXxXX"
"""


def test_a_mutants_changed_line_is_read_from_the_source_mutmut_wrote(tmp_path: Path) -> None:
    package = tmp_path / "calls_batch_get"
    (package / "store").mkdir(parents=True)
    (package / "cursor.py").write_text(MUTATED_MODULE)
    (package / "store" / "__init__.py").write_text(MUTATED_MODULE)
    changed = mutations(package)
    assert changed == {
        "calls_batch_get.cursor.x_f__mutmut_1": "if a >= 1:",
        "calls_batch_get.cursor.x_f__mutmut_2": "removed: return 2",
        "calls_batch_get.cursor.xǁCǁg__mutmut_1": 'return "XXxXX"',
        "calls_batch_get.store.x_f__mutmut_1": "if a >= 1:",
        "calls_batch_get.store.x_f__mutmut_2": "removed: return 2",
        "calls_batch_get.store.xǁCǁg__mutmut_1": 'return "XXxXX"',
    }


def test_every_listed_equivalent_has_a_reason_and_its_mutation() -> None:
    from scripts.mutation import equivalent_mutants

    listed = equivalent_mutants()
    assert listed
    assert all(entry.reason and entry.mutated for entry in listed.values())


@pytest.mark.parametrize(("mutant", "module"), [
    (f"{PG}3", "store.postgres"),
    (f"{CURSOR}1", "cursor"),
])
def test_a_mutants_module(mutant: str, module: str) -> None:
    assert module_of(mutant) == module


def test_the_time_report_names_where_the_round_went(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    times_file = tmp_path / "mutant-times.jsonl"
    times_file.write_text(
        json.dumps({"mutant": f"{PG}1", "seconds": 0.5, "tests": 3, "exit": 1}) + "\n"
        + json.dumps({"mutant": f"{PG}2", "seconds": 40.0, "tests": 300, "exit": 0}) + "\n"
        + json.dumps({"mutant": f"{PG}1", "seconds": 0.25, "tests": 2, "exit": 1}) + "\n"
    )
    times = session_times(times_file)
    assert times == {f"{PG}1": (0.25, 2), f"{PG}2": (40.0, 300)}  # a mutant's last session
    time_report(times, {f"{PG}1": "killed", f"{PG}2": "survived"})
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "test sessions: 40 s (survived 40 s, killed 0 s)"
    assert out[2].split() == ["40.0", "s", "300", "tests", "survived", f"{PG}2"]


def test_listed_equivalents_are_set_aside_and_counted_as_equivalent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scripts.mutation as mutation

    monkeypatch.setattr(mutation, "MUTANTS_DIR", tmp_path)
    meta = tmp_path / "calls_batch_get" / "store" / "postgres.py.meta"
    meta.parent.mkdir(parents=True)
    codes = {f"{PG}1": None, f"{PG}2": None, f"{PG}3": 1, f"{PG}4": mutation.SET_ASIDE_EXIT_CODE}
    meta.write_text(json.dumps({"exit_code_by_key": codes, "hash_by_function_name": {"f": "h"}}))
    # PG2 has no verdict and is listed; PG3 has one; PG4 was set aside but is listed no more.
    listed = {f"{PG}2": Equivalent("why", "x"), f"{PG}3": Equivalent("why", "y")}
    assert mutation.set_aside(listed) == 1
    data = json.loads(meta.read_text())
    assert data["exit_code_by_key"] == {f"{PG}1": None, f"{PG}2": 34, f"{PG}3": 1, f"{PG}4": None}
    assert data["hash_by_function_name"] == {"f": "h"}

    verdicts = {f"{PG}1": "killed", f"{PG}2": "skipped", f"{PG}3": "killed", f"{PG}5": "skipped"}
    postgres = tally(verdicts, listed, [])["store.postgres"]
    # A set-aside equivalent counts as one; another skipped mutant is not run.
    assert (postgres.total, postgres.killed, postgres.equivalent, postgres.not_run) == (3, 2, 1, 1)
    assert postgres.score == 100.0
