"""clients/typescript/ holds the types openapi-typescript makes from openapi.yaml today, with a
named export of each schema (Batch, Contact, BatchStatus, ErrorCode...)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

CLIENT = ROOT / "clients/typescript"
TYPES = CLIENT / "src/calls-batch-get.ts"


def check(folder: Path) -> subprocess.CompletedProcess[str]:
    """The package's own check script, run by npm as a developer would."""
    npm = shutil.which("npm")
    assert npm, "npm is needed: .ci/run installs it"
    return subprocess.run(
        [npm, "run", "--silent", "check"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def installed() -> Path:
    # test.sh runs `npm ci` here when node_modules is missing.
    assert (CLIENT / "node_modules/.bin/openapi-typescript").exists(), "run ./test.sh"
    return CLIENT


def test_committed_types_are_current(installed: Path) -> None:
    result = check(installed)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_check_fails_on_stale_types(installed: Path, tmp_path: Path) -> None:
    # A copy of the package beside a changed contract: the same check must refuse it.
    copy = tmp_path / "clients/typescript"
    shutil.copytree(installed, copy, ignore=lambda folder, _: (
        {"node_modules", "dist", "dist-test"} if Path(folder) == installed else set()
    ))
    (copy / "node_modules").symlink_to(installed / "node_modules")
    document = (ROOT / "openapi.yaml").read_text()
    stale = document.replace(
        "        has_more:\n          type: boolean", "        has_more:\n          type: integer"
    )
    (tmp_path / "openapi.yaml").write_text(stale)
    assert (tmp_path / "openapi.yaml").read_text() != document
    result = check(copy)
    assert result.returncode != 0, result.stdout


def test_types_carry_the_contract() -> None:
    types = TYPES.read_text()
    assert "next_cursor: string | null;" in types
    assert "ETag: string;" in types
    assert '"token_expired"' in types
    assert "title: string | null;" in types
    assert 'BatchStatus: "draft" | "scheduled" | "processing" | "paused" | "completed"' in types
    assert 'status: components["schemas"]["BatchStatus"];' in types
    # The 405's body, which no operation lists.
    assert 'code: "method_not_allowed";' in types
    # The health check: a 200 has no error and every part ok, a 503 always an error.
    assert 'get: operations["getHealth"];' in types
    assert 'Part: "ok" | "down";' in types
    health = types.split("    getHealth: {", 1)[1]
    up, down = health.split("            503: {", 1)
    assert "error?: never;" in up
    assert 'key_set: "ok";' in up
    assert "error: string;" in down
    assert 'status: "down";' in down


def test_every_timestamp_says_it_is_a_date_time() -> None:
    # Nullable ones too, which pydantic's anyOf would have left as a bare `string | null`.
    lines = TYPES.read_text().splitlines()
    timestamps = [n for n, line in enumerate(lines) if line.strip().split(":")[0] in (
        "scheduled_for", "started_at", "created_at", "last_attempt_at", "completed_at"
    )]
    assert len(timestamps) == 6
    for n in timestamps:
        assert lines[n - 1].strip() == "/** Format: date-time */", lines[n]


NAMED = ("Batch", "BatchDetail", "BatchStatus", "Contact", "ContactPagination", "ContactStatus",
         "ErrorBody", "ErrorCode", "HealthBody", "ParameterErrorBody", "Part",
         "ResponseMethodNotAllowed")


def test_each_schema_is_a_named_export() -> None:
    types = TYPES.read_text()
    for name in NAMED:
        assert f"export type {name} = components[" in types, name
