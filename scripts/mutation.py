"""Mutation testing with mutmut, as configured in pyproject.toml's ``[tool.mutmut]``.

    scripts/mutation.sh [--pure] [--fresh] [--all] [--report] [--jobs N] [MODULE ...]

MODULE is a module of the package (``auth``, ``store.postgres``); none means all of them.
``--pure`` is the fast path: the modules that need no database, against the tests that need no
database. ``--fresh`` forgets earlier results (a run otherwise re-tests only what changed);
``--all`` runs the listed equivalent mutants too, which are otherwise set aside (each would run
every test that reaches its function, for a verdict known in advance: half a round's time);
``--report`` prints the table of the last run again.

One embedded PostgreSQL serves every mutant's test session (``TEST_DATABASE_URL``, unless that
is set already), so that a mutant costs its tests, not a server's start. At the end the script
prints the score per module, counting as equivalent the mutants that
``[tool.calls-batch-get.equivalent-mutants]`` names, each with the reason it changes nothing.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import shutil
import signal
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from scripts.localdb import shared_test_server  # noqa: E402 - after the path is set

PACKAGE = "calls_batch_get"
MUTANTS_DIR = REPO_ROOT / "mutants"
# Which kind of run left mutants/: results of a --pure run would stand in a full one.
MODE_FILE = MUTANTS_DIR / ".calls-batch-get-mode"
# What each mutant's test session cost, one JSON line each (tests/mutation_session.py writes it).
TIMES_FILE = MUTANTS_DIR / "mutant-times.jsonl"
SLOWEST = 10
# The modules whose tests need no database (the stores, the handler and the instance do).
PURE = ("auth", "cursor", "deadline", "errors", "http", "keyset", "lazy", "log", "params",
        "settings", "trace")
# mutmut's verdicts (mutmut.stats.status_by_exit_code) that kill a mutant. Not "timeout": on a
# busy machine a survivor running all its tests overruns its limit too, so a timeout is counted
# as left (and named) until a run with fewer jobs or a hand check tells which it is.
KILLED_STATUSES = frozenset({"killed", "caught by type check", "segfault"})
# Not run (another module's, or a run stopped early): neither killed nor surviving.
NOT_RUN_STATUSES = frozenset({"not checked", "check was interrupted by user", "skipped"})
# The verdict a listed equivalent is given instead of a run (mutmut's "skipped"): mutmut leaves
# a mutant that has one alone.
SET_ASIDE_EXIT_CODE = 34
SET_ASIDE = "equivalent, set aside"
# mutmut 3.8.1's own first steps of `mutmut run`, up to writing the mutants (its internals: the
# version is pinned), so that the listed equivalents can be set aside before the run.
GENERATE = """
import os
from mutmut.__main__ import create_mutants, store_lines_covered_by_tests
from mutmut.mutation.trampoline import set_mutant_under_test
from mutmut.utils.file_utils import copy_also_copy_files, copy_src_dir, setup_source_paths
set_mutant_under_test("mutant_generation")
os.makedirs("mutants", exist_ok=True)
copy_src_dir()
copy_also_copy_files()
setup_source_paths()
store_lines_covered_by_tests()
create_mutants(os.cpu_count() or 1)
"""


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    equivalent: int = 0
    survivors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """The mutants that were run, and the listed equivalents set aside."""
        return sum(n for status, n in self.statuses.items() if status not in NOT_RUN_STATUSES)

    @property
    def not_run(self) -> int:
        return sum(n for status, n in self.statuses.items() if status in NOT_RUN_STATUSES)

    @property
    def killed(self) -> int:
        return sum(n for status, n in self.statuses.items() if status in KILLED_STATUSES)

    @property
    def score(self) -> float:
        counted = self.total - self.equivalent
        return 100.0 * self.killed / counted if counted else 100.0


@dataclass(frozen=True)
class Equivalent:
    reason: str
    # The mutant's changed line(s), as mutations() gives them: a change to its function
    # renumbers its mutants, and a name must not go on excusing another mutation.
    mutated: str


def equivalent_mutants() -> dict[str, Equivalent]:
    with (REPO_ROOT / "pyproject.toml").open("rb") as file:
        tool = tomllib.load(file)["tool"]
    listed: dict[str, dict[str, str]] = tool.get("calls-batch-get", {}).get(
        "equivalent-mutants", {})
    return {name: Equivalent(entry["reason"], entry["mutated"]) for name, entry in listed.items()}


def mutations(package_dir: Path) -> dict[str, str]:
    """Each mutant's changed line(s), read from the sources mutmut wrote (each mutant is a copy
    of its function named ``<function>__mutmut_<n>`` beside ``<function>__mutmut_orig``)."""
    changed: dict[str, str] = {}
    for path in sorted(package_dir.rglob("*.py")):
        lines = path.read_text().splitlines()
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        functions: dict[str, list[str]] = {}
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
                "__mutmut_" in node.name
            ):
                body = lines[node.lineno:node.end_lineno]  # after the def line
                functions[node.name] = [line.strip() for line in body]
        for name, body in functions.items():
            base, _, number = name.rpartition("__mutmut_")
            original = functions.get(f"{base}__mutmut_orig")
            if number == "orig" or original is None:
                continue
            diff = list(difflib.unified_diff(original, body, lineterm="", n=0))[2:]
            added = [line[1:] for line in diff if line.startswith("+")]
            removed = [f"removed: {line[1:]}" for line in diff if line.startswith("-")]
            changed[f"{module}.{name}"] = " | ".join(added or removed)
    return changed


def confirmed(listed: Mapping[str, Equivalent],
              current: Mapping[str, str]) -> tuple[dict[str, Equivalent], list[str]]:
    """The listed equivalents whose mutant is still the mutation they were listed for, and the
    names of those whose mutant is now another (or gone)."""
    same = {name: entry for name, entry in listed.items() if current.get(name) == entry.mutated}
    return same, [name for name in listed if name not in same]


def module_of(mutant: str) -> str:
    """``calls_batch_get.store.postgres.xǁPostgresStoreǁread__mutmut_3`` -> ``store.postgres``."""
    dotted = mutant.removeprefix(f"{PACKAGE}.").split(".")
    return ".".join(dotted[:-1])


def results() -> dict[str, str]:
    """Every mutant's verdict, read from the ``.meta`` files mutmut writes next to each module."""
    from mutmut.stats import status_by_exit_code

    verdicts: dict[str, str] = {}
    for meta in sorted(MUTANTS_DIR.rglob("*.py.meta")):
        exit_codes: Mapping[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
        for name, code in exit_codes.items():
            verdicts[name] = status_by_exit_code[code]
    return verdicts


def tally(verdicts: Mapping[str, str], equivalent: Mapping[str, Equivalent],
          modules: list[str]) -> dict[str, Tally]:
    tallies: dict[str, Tally] = {}
    for name, status in sorted(verdicts.items()):
        module = module_of(name)
        if modules and module not in modules:
            continue
        entry = tallies.setdefault(module, Tally())
        if status == "skipped" and name in equivalent:
            status = SET_ASIDE
        entry.statuses[status] += 1
        if status in KILLED_STATUSES | NOT_RUN_STATUSES:
            continue
        if name in equivalent:
            entry.equivalent += 1
        else:
            entry.survivors.append(name)
    return tallies


def report(tallies: Mapping[str, Tally], verdicts: Mapping[str, str],
           equivalent: Mapping[str, Equivalent], changed: list[str],
           current: Mapping[str, str]) -> None:
    print(f"\n{'module':16} {'total':>5} {'killed':>6} {'equiv.':>6} {'left':>5} {'score':>7}"
          f" {'not run':>8}")
    whole = Tally()
    for module, entry in [*sorted(tallies.items()), ("all", whole)]:
        if entry is not whole:
            whole.statuses.update(entry.statuses)
            whole.equivalent += entry.equivalent
            whole.survivors += entry.survivors
        score = f"{entry.score:6.1f}%" if entry.total else "      -"
        print(f"{module:16} {entry.total:5} {entry.killed:6} {entry.equivalent:6} "
              f"{len(entry.survivors):5} {score} {entry.not_run:8}")
    print(f"(equivalent: {whole.equivalent}, of which {whole.statuses[SET_ASIDE]} set aside,"
          " not run)")
    for name in whole.survivors:
        print(f"  {verdicts[name]:10} {name}: {current.get(name, '?')}")
    # A listed mutant that is killed now, gone, or another mutation: the list must stay true.
    for name in changed:
        print(f"  listed as equivalent but now {current.get(name, 'gone')!r}: {name}")
    for name in equivalent:
        if verdicts.get(name) in KILLED_STATUSES:
            print(f"  listed as equivalent but {verdicts[name]}: {name}")


def set_aside(equivalent: Mapping[str, Equivalent]) -> int:
    """Gives each listed equivalent that has no verdict yet the set-aside one, and takes it
    from any other mutant set aside in an earlier run (``--all``, or no longer listed), in
    mutmut's ``.meta`` files; returns how many are set aside."""
    count = 0
    for meta in sorted(MUTANTS_DIR.rglob("*.py.meta")):
        data = json.loads(meta.read_text())
        codes: dict[str, int | None] = data["exit_code_by_key"]
        before = dict(codes)
        for name, code in codes.items():
            if code is None and name in equivalent:
                codes[name] = SET_ASIDE_EXIT_CODE
            elif code == SET_ASIDE_EXIT_CODE and name not in equivalent:
                codes[name] = None
        if codes != before:
            meta.write_text(json.dumps(data))
        count += sum(code == SET_ASIDE_EXIT_CODE for code in codes.values())
    return count


def prepare(mode: str, fresh: bool) -> None:
    recorded = MODE_FILE.read_text() if MODE_FILE.exists() else None
    if fresh or (recorded is not None and recorded != mode):
        shutil.rmtree(MUTANTS_DIR, ignore_errors=True)
    MUTANTS_DIR.mkdir(exist_ok=True)
    MODE_FILE.write_text(mode)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="modules of the package (default: all)")
    parser.add_argument("--pure", action="store_true", help="only what needs no database")
    parser.add_argument("--fresh", action="store_true", help="forget earlier results")
    parser.add_argument("--all", action="store_true",
                        help="run the listed equivalent mutants too")
    parser.add_argument("--report", action="store_true", help="only report the last results")
    parser.add_argument("--jobs", type=int, default=2 * (os.cpu_count() or 1),
                        help="mutants run at once (default: 2 per core)")
    args = parser.parse_args(argv)
    modules: list[str] = args.modules or (list(PURE) if args.pure else [])
    if args.report:
        return summarize(modules)
    prepare("pure" if args.pure else "full", args.fresh)

    # A SIGTERM ends the run as Ctrl-C does: through the with-blocks, so the server is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    env = dict(os.environ)
    if args.pure:
        # The conftest marks every test that needs the database server.
        env["PYTEST_ADDOPTS"] = f"{env.get('PYTEST_ADDOPTS', '')} -m 'not database'".strip()
    mutmut = Path(sys.executable).with_name("mutmut")
    subprocess.run([sys.executable, "-c", GENERATE], cwd=REPO_ROOT, env=env, check=True)
    current = mutations(MUTANTS_DIR / PACKAGE)
    equivalent = {} if args.all else confirmed(equivalent_mutants(), current)[0]
    # A run of all mutants runs those without a verdict, which set_aside() gives the listed
    # equivalents; named mutants are run whatever their verdict (mutmut's rule), so a run of
    # some modules names all of theirs but the listed equivalents.
    print(f"{set_aside(equivalent)} listed equivalent mutants set aside (--all runs them)")
    names = [name for name in sorted(current)
             if module_of(name) in modules and name not in equivalent] if modules else []
    with shared_test_server() as url:
        env["TEST_DATABASE_URL"] = url
        # More mutants at once than cores: much of a mutant's time is its tests waiting (for
        # budgets to run out, frozen servers, key services). Not many more: a surviving mutant
        # runs all its tests, and starved of CPU it overruns its limit and reads as a timeout.
        command = [str(mutmut), "run", "--max-children", str(args.jobs), *names]
        run = subprocess.run(command, cwd=REPO_ROOT, env=env, check=False)
    if run.returncode != 0:
        return run.returncode
    # The run wrote no mutants anew: they were written before it, and read into `current`.
    return summarize(modules, current)


def session_times(path: Path = TIMES_FILE) -> dict[str, tuple[float, int]]:
    """Each mutant's last session: seconds and tests run."""
    times: dict[str, tuple[float, int]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            times[entry["mutant"]] = (entry["seconds"], entry["tests"])
    return times


def time_report(times: Mapping[str, tuple[float, int]], verdicts: Mapping[str, str]) -> None:
    """Where a round's time went: the test sessions' seconds by verdict, and the slowest."""
    if not times:
        return
    by_verdict: dict[str, float] = {}
    for name, (seconds, _) in times.items():
        status = verdicts.get(name, "gone")
        by_verdict[status] = by_verdict.get(status, 0.0) + seconds
    spent = ", ".join(f"{status} {seconds:.0f} s"
                      for status, seconds in sorted(by_verdict.items(), key=lambda x: -x[1]))
    print(f"\ntest sessions: {sum(by_verdict.values()):.0f} s ({spent})")
    for name, (seconds, tests) in sorted(times.items(), key=lambda x: -x[1][0])[:SLOWEST]:
        print(f"  {seconds:6.1f} s {tests:4} tests  {verdicts.get(name, 'gone'):9} {name}")


def summarize(modules: list[str], current: Mapping[str, str] | None = None) -> int:
    """The report; ``current`` is mutations() of the run, when it has just been read."""
    verdicts = results()
    if current is None:
        current = mutations(MUTANTS_DIR / PACKAGE)
    equivalent, changed = confirmed(equivalent_mutants(), current)
    report(tally(verdicts, equivalent, modules), verdicts, equivalent, changed, current)
    time_report(session_times(), verdicts)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
