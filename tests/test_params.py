from __future__ import annotations

import contextlib
import time
from uuid import UUID

import pytest
from werkzeug.datastructures import MultiDict

from calls_batch_get.models import ContactStatus
from calls_batch_get.params import ParamError, parse_query

BATCH = "3f1c2b7e-8a4d-4c5e-9f00-0123456789ab"


def parse(*pairs: tuple[str, str]) -> object:
    return parse_query(MultiDict(list(pairs)))


def error_of(*pairs: tuple[str, str]) -> str:
    with pytest.raises(ParamError) as caught:
        parse(*pairs)
    assert caught.value.status == 400
    # Every message leads with the parameter the body's "parameter" names.
    assert caught.value.message.split()[0] == caught.value.parameter
    assert caught.value.body().parameter == caught.value.parameter
    return caught.value.message


def test_defaults() -> None:
    query = parse_query(MultiDict([("batch_id", BATCH)]))
    assert query.batch_id == UUID(BATCH)
    assert query.contact_status is None
    assert (query.limit, query.offset) == (50, 0)


def test_all_parameters() -> None:
    query = parse_query(
        MultiDict(
            [
                ("batch_id", BATCH.upper()),
                ("contact_status", "in_progress"),
                ("contact_limit", "7"),
                ("contact_offset", "14"),
            ]
        )
    )
    assert query.batch_id == UUID(BATCH)
    assert query.contact_status is ContactStatus.IN_PROGRESS
    assert (query.limit, query.offset) == (7, 14)


@pytest.mark.parametrize("pairs", [(), (("batch_id", ""),)])
def test_batch_id_missing_or_empty(pairs: tuple[tuple[str, str], ...]) -> None:
    assert error_of(*pairs) == "batch_id query parameter is required"


@pytest.mark.parametrize(
    "raw",
    [
        "abc",
        "3f1c2b7e8a4d4c5e9f000123456789ab",  # no hyphens: PostgreSQL takes it, we ask for the form
        "{3f1c2b7e-8a4d-4c5e-9f00-0123456789ab}",
        "urn:uuid:3f1c2b7e-8a4d-4c5e-9f00-0123456789ab",
        " 3f1c2b7e-8a4d-4c5e-9f00-0123456789ab",
        "3f1c2b7e-8a4d-4c5e-9f00-0123456789ab\n",
        "3f1c2b7e-8a4d-4c5e-9f00-0123456789aΩ",
        "'; drop table users; --",
        # One hex digit short or over, in each group.
        "3f1c2b7-8a4d-4c5e-9f00-0123456789ab",
        "3f1c2b7e-8a4-4c5e-9f00-0123456789ab",
        "3f1c2b7e-8a4d-4c5-9f00-0123456789ab",
        "3f1c2b7e-8a4d-4c5e-9f0-0123456789ab",
        "3f1c2b7e-8a4d-4c5e-9f00-0123456789a",
        "3f1c2b7e-8a4d-4c5e-9f00-0123456789abc",
    ],
)
def test_batch_id_not_a_uuid(raw: str) -> None:
    assert error_of(("batch_id", raw)) == "batch_id must be a UUID"


@pytest.mark.parametrize("raw", ["done", "COMPLETED", "", "completed ", "pendïng", "eq.pending"])
def test_contact_status_not_allowed(raw: str) -> None:
    message = error_of(("batch_id", BATCH), ("contact_status", raw))
    assert message == (
        "contact_status must be one of: pending, queued, in_progress, completed, failed, skipped"
    )


@pytest.mark.parametrize(
    "raw", ["abc", "1.5", "", " 5", "5 ", "+5", "1e3", "٣", "-", "--1", "9" * 21 + "x"]
)
def test_contact_limit_not_an_integer(raw: str) -> None:
    message = error_of(("batch_id", BATCH), ("contact_limit", raw))
    assert message == "contact_limit must be an integer"


@pytest.mark.parametrize("raw", ["0", "-0", "000", "-1", "-99999", "-" + "9" * 5000])
def test_contact_limit_below_one(raw: str) -> None:
    message = error_of(("batch_id", BATCH), ("contact_limit", raw))
    assert message == "contact_limit must be at least 1"


@pytest.mark.parametrize(
    ("raw", "limit"),
    [("1", 1), ("200", 200), ("0200", 200), ("201", 200), ("1000", 200), ("9" * 20, 200),
     ("9" * 21, 200), ("1" + "0" * 4999, 200), ("0" * 5000 + "7", 7)],
    ids=["1", "200", "0200", "201", "1000", "20-digits", "21-digits", "5000-digits", "zeros-7"],
)
def test_contact_limit_clamped_to_200(raw: str, limit: int) -> None:
    assert parse_query(MultiDict([("batch_id", BATCH), ("contact_limit", raw)])).limit == limit


@pytest.mark.parametrize("raw", ["x", "1.0", "", "0x10"])
def test_contact_offset_not_an_integer(raw: str) -> None:
    message = error_of(("batch_id", BATCH), ("contact_offset", raw))
    assert message == "contact_offset must be an integer"


def test_contact_offset_below_zero() -> None:
    assert error_of(("batch_id", BATCH), ("contact_offset", "-1")) == (
        "contact_offset must be at least 0"
    )


def test_contact_offset_huge_is_stopped_before_the_database() -> None:
    # The bound is PostgreSQL's integer, which the read function's offset is: the largest one
    # is taken, one past it refused here (the database would fail it with a 500).
    assert parse_query(
        MultiDict([("batch_id", BATCH), ("contact_offset", "2147483647")])
    ).offset == 2_147_483_647
    for raw in ("2147483648", "9" * 21, "9" * 5000):
        assert error_of(("batch_id", BATCH), ("contact_offset", raw)) == (
            "contact_offset must be at most 2147483647"
        )
    assert error_of(("batch_id", BATCH), ("contact_offset", "-" + "9" * 40)) == (
        "contact_offset must be at least 0"
    )


@pytest.mark.parametrize(
    "name", ["batch_id", "contact_status", "contact_limit", "contact_offset"]
)
def test_parameter_given_twice(name: str) -> None:
    values = {"batch_id": BATCH, "contact_status": "queued", "contact_limit": "5",
              "contact_offset": "0"}
    pairs = [("batch_id", BATCH), (name, values[name])]
    if name != "batch_id":
        pairs.append((name, values[name]))
    assert error_of(*pairs) == f"{name} query parameter is given more than once"


def test_unknown_parameters_are_ignored() -> None:
    query = parse_query(MultiDict([("batch_id", BATCH), ("select", "*"), ("limit", "x")]))
    assert query.limit == 50


def test_batch_id_is_checked_before_the_others() -> None:
    assert error_of(("contact_limit", "x")) == "batch_id query parameter is required"


@pytest.mark.parametrize("raw", ["0" * 100_000 + "x", "-" + "0" * 100_000 + "x", "9" * 100_000])
def test_long_numbers_are_judged_in_linear_time(raw: str) -> None:
    # A regex that backtracks on long runs of digits would take tens of seconds here.
    started = time.monotonic()
    with contextlib.suppress(ParamError):
        parse_query(MultiDict([("batch_id", BATCH), ("contact_limit", raw)]))
    assert time.monotonic() - started < 1.0
