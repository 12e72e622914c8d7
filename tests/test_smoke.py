"""scripts/smoke.py against the running function, on both stores, as it is run after a deploy."""

from __future__ import annotations

import subprocess
import sys
from uuid import UUID

import pytest

from tests.conftest import ROOT
from tests.live import LiveFunction, live_function  # noqa: F401 - the fixture
from tests.scenarios import MAIN_BATCH, OTHER_AGENCY_BATCH, USER_A
from tests.tokens import TokenFactory


def smoke(url: str, token: str, batch_id: UUID | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/smoke.py", url, token, str(batch_id)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_smoke_passes_on_a_good_deploy(
    live_function: LiveFunction,  # noqa: F811 - the imported fixture
    tokens: TokenFactory,
) -> None:
    result = smoke(live_function.url, tokens.es256(USER_A), MAIN_BATCH.id)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "ok   preflight", "ok   unauthenticated", "ok   batch", "ok   not-modified"
    ]
    assert "401 missing_token" in lines[1]
    assert f"of {len(MAIN_BATCH.contacts)} contacts" in lines[2]


@pytest.mark.parametrize(
    ("token_kind", "batch", "failing"),
    [
        ("expired", MAIN_BATCH.id, "FAIL batch: expected 200, got 401"),
        ("valid", OTHER_AGENCY_BATCH.id, "FAIL batch: expected 200, got 404"),
    ],
)
def test_smoke_fails_with_the_reason(
    live_function: LiveFunction,  # noqa: F811 - the imported fixture
    tokens: TokenFactory,
    token_kind: str,
    batch: UUID,
    failing: str,
) -> None:
    token = tokens.es256(USER_A, exp=1_000_000) if token_kind == "expired" else tokens.es256(USER_A)
    result = smoke(live_function.url, token, batch)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1].startswith(failing), result.stdout
