"""What other libraries log reaches stdout as one JSON line each, with none of the values they
filled in (database hosts, addresses, error text): what an operator sees in Cloud Logging."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from calls_batch_get.log import LOGGER_NAME, configure, severity

SECRET_HOST = "db.secret-host.example"
SECRET_ADDRESS = "10.1.2.3"


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    out = capsys.readouterr().out
    assert SECRET_HOST not in out
    assert SECRET_ADDRESS not in out
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture(autouse=True)
def configured() -> Iterator[None]:
    """Logging as an instance's start configures it in a process that never logged: handlers
    built anew, not left over from an earlier test (which would hide a broken constructor);
    the earlier ones are put back afterwards."""
    root, ours = logging.getLogger(), logging.getLogger(LOGGER_NAME)
    saved = root.handlers[:], ours.handlers[:]
    root.handlers = [h for h in root.handlers if type(h).__module__ != "calls_batch_get.log"]
    ours.handlers = []
    configure("INFO")
    yield
    root.handlers, ours.handlers = saved


def test_a_librarys_record_keeps_its_template_not_its_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logging.getLogger("psycopg.pool").warning(
        "error connecting in %r: %s", "pool-1",
        f'connection to server at "{SECRET_HOST}" ({SECRET_ADDRESS}), port 5432 failed',
    )
    assert lines(capsys) == [{"severity": "WARNING", "message": "error connecting in %r: %s",
                              "logger": "psycopg.pool"}]


def test_a_librarys_record_without_a_template_is_withheld(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logging.getLogger("psycopg").error(f"could not translate host name {SECRET_HOST}")
    assert lines(capsys) == [{"severity": "ERROR", "message": "(message withheld)",
                              "logger": "psycopg"}]


def test_a_librarys_exception_is_named_by_its_class_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    try:
        raise psycopg.OperationalError(f"connection to {SECRET_HOST} ({SECRET_ADDRESS}) refused")
    except psycopg.OperationalError:
        logging.getLogger("psycopg.pool").exception("discarding closed connection: %s", "x")
    assert lines(capsys) == [{
        "severity": "ERROR", "message": "discarding closed connection: %s",
        "logger": "psycopg.pool", "cause": "OperationalError",
    }]


def test_a_python_warning_is_one_line_without_its_text(capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        configure("INFO")
        warnings.warn(f"pool could not reach {SECRET_HOST}", ResourceWarning, stacklevel=1)
    (line,) = lines(capsys)
    assert line["severity"] == "WARNING"
    assert line["message"] == "Python warning"
    assert line["cause"] == "ResourceWarning"
    assert line["where"].startswith("test_log.py:")


def test_a_threads_exception_is_one_line_naming_its_class(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def fail() -> None:
        raise psycopg.OperationalError(f"server at {SECRET_HOST} closed the connection")

    thread = threading.Thread(target=fail)
    thread.start()
    thread.join()
    assert lines(capsys) == [{"severity": "ERROR", "message": "uncaught exception in a thread",
                              "cause": "OperationalError"}]


@pytest.mark.parametrize(("status", "level"), [
    (200, logging.INFO), (304, logging.INFO), (399, logging.INFO),
    (400, logging.WARNING), (404, logging.WARNING), (499, logging.WARNING),
    (500, logging.ERROR), (503, logging.ERROR),
])
def test_the_request_lines_severity_follows_its_status(status: int, level: int) -> None:
    assert severity(status) == level


class BrokenStdout(io.StringIO):
    def write(self, _: str) -> int:
        raise OSError("stdout is gone")


def test_a_line_that_cannot_be_written_is_dropped_without_a_word_elsewhere(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdout", BrokenStdout())
    # Neither raises, and nothing of the record reaches stderr instead (its arguments there
    # would undo the redaction).
    logging.getLogger("psycopg.pool").warning("error connecting to %s", SECRET_HOST)
    logging.getLogger(LOGGER_NAME).info("GET 200", extra={"fields": {"status": 200}})
    monkeypatch.undo()
    assert capsys.readouterr().err == ""
