"""scripts/mutation.py's tally: what counts as killed, as equivalent, as left and as not run,
so that the score printed after a round means what docs/testing.md says it does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.mutation import module_of, report, session_times, tally, time_report

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
    tallies = tally(verdicts, {f"{PG}6": "why it changes nothing"}, [])
    postgres = tallies["store.postgres"]
    assert (postgres.total, postgres.killed, postgres.equivalent, postgres.not_run) == (6, 3, 1, 1)
    # A timeout is not a kill: on a busy machine a survivor running all its tests times out too.
    assert postgres.survivors == [f"{PG}4", f"{PG}5"]
    assert postgres.score == pytest.approx(60.0)
    assert tallies["cursor"].score == 100.0


def test_only_the_modules_asked_for_are_tallied() -> None:
    verdicts = {f"{PG}1": "killed", f"{CURSOR}1": "survived"}
    assert list(tally(verdicts, {}, ["cursor"])) == ["cursor"]


def test_a_listed_equivalent_that_is_killed_or_gone_is_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    verdicts = {f"{PG}1": "killed", f"{PG}2": "survived"}
    equivalent = {f"{PG}1": "no longer", f"{PG}2": "still", f"{PG}9": "renumbered"}
    report(tally(verdicts, equivalent, []), verdicts, equivalent)
    out = capsys.readouterr().out
    assert f"listed as equivalent but killed: {PG}1" in out
    assert f"listed as equivalent but gone: {PG}9" in out
    assert f"{PG}2" not in out
    assert "store.postgres       2      1      1     0  100.0%        0" in out


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
