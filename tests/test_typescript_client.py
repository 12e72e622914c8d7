"""clients/typescript/'s client: compiled with tsc --strict as a browser project would (the
client, and examples that switch exhaustively over the enumerations, which must stop compiling
when openapi.yaml adds a member), and its Node tests run against the running function on both
stores, over the scenarios' data."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ROOT
from tests.live import LiveFunction, live_function  # noqa: F401 - the fixture
from tests.scenarios import BIG_BATCH, MISSING_BATCH, USER_A, ordered
from tests.tokens import TokenFactory

CLIENT = ROOT / "clients/typescript"
TSC = CLIENT / "node_modules/.bin/tsc"
# What the Node tests' poll changes: the first contact of the batch in the API's order, so that
# the page it polls (the first five) is another body.
FIRST_CONTACT = ordered(BIG_BATCH)[0]["id"]
STATUS = "completed"
# The package's installed and compiled folders, which a copy of its sources does without.
OUTPUTS = {"node_modules", "dist", "dist-test"}


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def installed() -> Path:
    # test.sh runs `npm ci` here when node_modules is missing or older than the lock.
    assert TSC.exists(), "run ./test.sh"
    return CLIENT


def test_the_client_compiles_strict_without_node(installed: Path, tmp_path: Path) -> None:
    # tsconfig.json has no Node types: the client must need nothing but the DOM's fetch.
    result = run([str(TSC), "-p", "tsconfig.json", "--outDir", str(tmp_path)], installed)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "index.d.ts").exists()
    # What a page loads imports nothing: the generated module holds types only.
    emitted = (tmp_path / "index.js").read_text() + (tmp_path / "calls-batch-get.js").read_text()
    assert not re.search(r"^\s*import\b|\brequire\(", emitted, re.M), emitted
    config = json.loads(
        "\n".join(
            line for line in (installed / "tsconfig.json").read_text().splitlines()
            if not line.lstrip().startswith("//")
        )
    )
    assert config["compilerOptions"]["strict"] is True
    assert config["compilerOptions"]["types"] == []
    package = json.loads((installed / "package.json").read_text())
    assert "dependencies" not in package, "nothing at run time but fetch"


def test_the_examples_compile_strict(installed: Path) -> None:
    result = run([str(TSC), "-p", "examples/tsconfig.json"], installed)
    assert result.returncode == 0, result.stdout + result.stderr


Edit = tuple[tuple[str, str], ...]


def copy_with(tmp_path: Path, edits: Edit) -> Path:
    """The package beside an openapi.yaml with ``edits`` made, its types generated anew."""
    copy = tmp_path / "clients/typescript"
    shutil.copytree(
        CLIENT, copy, ignore=lambda folder, _: OUTPUTS if Path(folder) == CLIENT else set()
    )
    (copy / "node_modules").symlink_to(CLIENT / "node_modules")
    document = (ROOT / "openapi.yaml").read_text()
    for old, new in edits:
        assert document.count(old) == 1, old
        document = document.replace(old, new)
    (tmp_path / "openapi.yaml").write_text(document)
    generated = run(["npm", "run", "--silent", "generate"], copy)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    return copy


NEVER = "is not assignable to parameter of type 'never'"


@pytest.mark.parametrize(
    ("edits", "failing"),
    [
        # A batch status the badges do not know.
        ((("      - cancelled\n", "      - cancelled\n      - archived\n"),),
         {"examples/badges.ts"}),
        # A contact status.
        ((("      - skipped\n      type: string\n    ErrorBody:",
           "      - skipped\n      - dialing\n      type: string\n    ErrorBody:"),),
         {"examples/badges.ts"}),
        # An error code, of the 500: the page's remedies, and the client's run-time guard.
        ((("      - internal_error\n", "      - internal_error\n      - overloaded\n"),
          ("enum: [database_error, auth_unavailable, internal_error]",
           "enum: [database_error, auth_unavailable, internal_error, overloaded]")),
         {"examples/badges.ts", "src/index.ts"}),
    ],
    ids=["batch-status", "contact-status", "error-code"],
)
def test_a_member_the_code_does_not_handle_fails_the_compile(
    installed: Path, tmp_path: Path, edits: Edit, failing: set[str]
) -> None:
    copy = copy_with(tmp_path, edits)
    result = run([str(TSC), "-p", "examples/tsconfig.json"], copy)
    assert result.returncode != 0, "the compile passed with a member nobody handles"
    errors = [line for line in result.stdout.splitlines() if ": error TS" in line]
    assert {line.split("(")[0] for line in errors} == failing, result.stdout
    assert any(NEVER in line for line in errors if line.startswith("examples/")), result.stdout


def test_an_unchanged_copy_compiles(installed: Path, tmp_path: Path) -> None:
    # The failures above are the edits', not the copying's.
    copy = copy_with(tmp_path, (("title: calls-batch-get", "title: calls-batch-get"),))
    result = run([str(TSC), "-p", "examples/tsconfig.json"], copy)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def compiled(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Node tests and what they import, compiled to an ES-module folder of their own (not
    the package's, which another run may be compiling)."""
    out = tmp_path_factory.mktemp("client-tests")
    result = run([str(TSC), "-p", "test/tsconfig.json", "--outDir", str(out)], installed)
    assert result.returncode == 0, result.stdout + result.stderr
    (out / "package.json").write_text('{"type": "module"}\n')
    (out / "node_modules").symlink_to(installed / "node_modules")
    return out


@contextlib.contextmanager
def change_server(database_url: str) -> Iterator[str]:
    """A URL whose POST changes the batch's first contact, for the poll test to see a new body."""

    class Change(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(
                    "update public.campaign_contacts set outcome_notes = 'changed by the poll'"
                    " where id = %s",
                    (FIRST_CONTACT,),
                )
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Change)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.timeout(180)
def test_the_client_against_the_running_function(
    live_function: LiveFunction,  # noqa: F811 - the imported fixture
    tokens: TokenFactory,
    compiled: Path,
    database_url: str,
) -> None:
    with change_server(database_url) as change_url:
        result = run(
            ["node", "--test", "--test-reporter=tap", "test/client.test.js"],
            compiled,
            CBG_URL=live_function.url + "/",
            CBG_TOKEN=tokens.es256(USER_A),
            CBG_EXPIRED_TOKEN=tokens.es256(USER_A, exp=1_000_000),
            CBG_BATCH_ID=str(BIG_BATCH.id),
            CBG_MISSING_BATCH_ID=str(MISSING_BATCH),
            CBG_CONTACT_IDS=json.dumps([str(c["id"]) for c in ordered(BIG_BATCH)]),
            CBG_STATUS=STATUS,
            CBG_STATUS_CONTACT_IDS=json.dumps([str(c["id"]) for c in ordered(BIG_BATCH, STATUS)]),
            CBG_CHANGE_URL=change_url,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Every test ran: a file that failed to load reports no test at all.
    written = len(re.findall(r"^test\(", (CLIENT / "test/client.test.ts").read_text(), re.M))
    assert f"\n# tests {written}\n" in output, output
    assert f"\n# pass {written}\n" in output, output
