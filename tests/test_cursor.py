"""contact_cursor: what a cursor carries, and every way a bad one is a 400 naming it."""

from __future__ import annotations

import base64
import string
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from werkzeug.datastructures import MultiDict

from calls_batch_get import cursor
from calls_batch_get.cursor import CursorError, Position
from calls_batch_get.models import ContactStatus
from calls_batch_get.params import ParamError, parse_query

BATCH = UUID("c0000000-0000-4000-8000-000000000001")
OTHER_BATCH = UUID("c0000000-0000-4000-8000-000000000002")
# A fixed id: the cursors made of it name parametrized tests, which must be the same in every
# process (a mutation run collects the suite in one and runs each test by its name in another).
POSITION = Position(
    datetime(2025, 1, 15, 10, 30, 0, 123456, tzinfo=UTC),
    UUID("7e0c3d7a-9a4b-4c55-8f0e-2d6f1b3a9c01"),
)
# The whole message, as the 400 carries it (a search for a part would take it inside another).
INVALID = "^contact_cursor is not a valid cursor$"
FOREIGN = "^contact_cursor belongs to another batch or contact_status$"


def made(status: ContactStatus | None = None, position: Position = POSITION) -> str:
    return cursor.encode(BATCH, status, position)


@pytest.mark.parametrize("status", [None, *ContactStatus])
@pytest.mark.parametrize(
    "created_at",
    [
        datetime(2025, 1, 15, 10, 30, tzinfo=UTC),
        datetime(2025, 1, 15, 10, 30, 0, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        # Another offset: the same instant.
        datetime(2025, 1, 15, 12, 30, tzinfo=UTC).astimezone().replace(microsecond=7),
    ],
)
def test_a_cursor_carries_its_position_exactly(
    status: ContactStatus | None, created_at: datetime
) -> None:
    position = Position(created_at, uuid4())
    raw = made(status, position)
    assert set(raw) <= set(string.ascii_letters + string.digits + "-_")
    assert len(raw) <= cursor.MAX_CURSOR_LENGTH
    assert cursor.decode(raw, BATCH, status) == position


def test_every_cursor_made_is_taken_back_whatever_its_last_character() -> None:
    # The check that a cursor is spelled as we spell it must not trip over its own alphabet:
    # walk positions until cursors ending in each of the 64 characters have been made.
    endings: set[str] = set()
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for step in range(20_000):
        position = Position(start + timedelta(microseconds=step), UUID(int=step * 7919))
        raw = made(None, position)
        endings.add(raw[-1])
        assert cursor.decode(raw, BATCH, None) == position
        if len(endings) == 64:
            break
    assert len(endings) == 64


def test_a_cursor_is_opaque_but_stable() -> None:
    assert made() == made()
    assert made() != made(ContactStatus.PENDING)
    assert str(POSITION.id) not in made()


@pytest.mark.parametrize(
    ("batch_id", "status"),
    [(OTHER_BATCH, None), (BATCH, ContactStatus.PENDING), (OTHER_BATCH, ContactStatus.QUEUED)],
)
def test_a_cursor_is_bound_to_its_batch_and_filter(
    batch_id: UUID, status: ContactStatus | None
) -> None:
    with pytest.raises(CursorError, match=FOREIGN):
        cursor.decode(made(), batch_id, status)
    with pytest.raises(CursorError, match=FOREIGN):
        cursor.decode(made(ContactStatus.QUEUED), BATCH, None)


def test_every_single_character_changed_is_refused() -> None:
    raw = made(ContactStatus.FAILED)
    alphabet = string.ascii_letters + string.digits + "-_"
    for n, char in enumerate(raw):
        for other in (alphabet[(alphabet.index(char) + k) % len(alphabet)] for k in (1, 17, 40)):
            tampered = raw[:n] + other + raw[n + 1 :]
            with pytest.raises(CursorError, match=INVALID):
                cursor.decode(tampered, BATCH, ContactStatus.FAILED)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "abc",
        "a",
        "====",
        "not a cursor",
        "%41%42",
        "ab+/cd==",
        "x" * (cursor.MAX_CURSOR_LENGTH + 1),
        "\u00e9" * 10,
        made()[:-1],
        made() + "A",
        made() + "==",
        made()[1:],
    ],
)
def test_garbage_is_refused(raw: str) -> None:
    with pytest.raises(CursorError, match=INVALID):
        cursor.decode(raw, BATCH, None)


def test_a_well_formed_cursor_with_a_made_up_digest_is_refused() -> None:
    data = bytearray(base64.urlsafe_b64decode(made() + "=="))
    data[-1] ^= 1
    forged = base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode()
    with pytest.raises(CursorError, match=INVALID):
        cursor.decode(forged, BATCH, None)


def query(**params: str) -> MultiDict[str, str]:
    return MultiDict({"batch_id": str(BATCH), **params})


def test_contact_cursor_sets_where_the_page_starts() -> None:
    parsed = parse_query(query(contact_cursor=made(ContactStatus.SKIPPED),
                               contact_status="skipped", contact_limit="500"))
    assert (parsed.after, parsed.offset, parsed.limit) == (POSITION, 0, 200)
    assert parse_query(query()).after is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"contact_cursor": "garbage"}, "contact_cursor is not a valid cursor"),
        ({"contact_cursor": made(), "contact_status": "queued"},
         "contact_cursor belongs to another batch or contact_status"),
        ({"contact_cursor": made(), "contact_offset": "0"},
         "contact_cursor cannot be combined with contact_offset"),
    ],
)
def test_a_bad_contact_cursor_is_a_400_naming_it(params: dict[str, str], message: str) -> None:
    with pytest.raises(ParamError) as raised:
        parse_query(query(**params))
    assert (raised.value.status, raised.value.message) == (400, message)
    assert raised.value.body().parameter == "contact_cursor"


def test_contact_cursor_given_twice_is_a_400() -> None:
    args = query()
    args.setlist("contact_cursor", [made(), made()])
    with pytest.raises(ParamError, match="contact_cursor query parameter is given more than once"):
        parse_query(args)


def test_the_other_parameters_are_checked_first() -> None:
    # The documented order: batch_id, contact_status, contact_limit, contact_offset, cursor.
    with pytest.raises(ParamError, match="contact_limit"):
        parse_query(query(contact_cursor="garbage", contact_limit="x"))
    with pytest.raises(ParamError, match="contact_offset must be an integer"):
        parse_query(query(contact_cursor="garbage", contact_offset="x"))


def forged(payload: bytes) -> str:
    """A cursor of any payload with its right digest: the digest needs no secret, so anyone can
    make one, and every check after it must hold on its own."""
    return base64.urlsafe_b64encode(payload + cursor._digest(payload)).rstrip(b"=").decode()


def payload_of(raw: str) -> bytearray:
    return bytearray(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))[:-8])


# The layout's offsets: version, batch id, status index, flags, microseconds, contact id.
VERSION, STATUS, FLAGS, MICROS = 0, 17, 18, slice(19, 27)


def test_a_timestamp_out_of_pythons_range_is_refused() -> None:
    # Ours never hold one; a hand-made cursor with a valid digest could.
    far = Position(datetime(9999, 12, 31, tzinfo=UTC), uuid4())
    raw = cursor.encode(BATCH, None, far)
    payload = payload_of(raw)
    payload[MICROS] = (2**62).to_bytes(8, "big")
    with pytest.raises(CursorError, match=INVALID):
        cursor.decode(forged(bytes(payload)), BATCH, None)
    assert far.created_at + timedelta(0) == cursor.decode(raw, BATCH, None).created_at


def test_the_layout_offsets_are_those_of_a_real_cursor() -> None:
    """So that the forgeries below change what they say they change."""
    position = Position(datetime(2025, 1, 15, tzinfo=UTC), uuid4(), tie_follows=True)
    payload = payload_of(cursor.encode(BATCH, ContactStatus.FAILED, position))
    micros = (position.created_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert (payload[VERSION], payload[FLAGS]) == (1, 1)
    assert payload[STATUS] == 1 + list(ContactStatus).index(ContactStatus.FAILED)
    assert int.from_bytes(payload[MICROS], "big") == micros


@pytest.mark.parametrize(
    ("offset", "value"),
    [
        (VERSION, 2),  # a version we do not make
        (VERSION, 0),
        (STATUS, len(ContactStatus) + 1),  # one past the last status
        (STATUS, 255),
        (FLAGS, 2),  # a flag we do not make
    ],
)
def test_a_forged_field_with_a_right_digest_is_refused(offset: int, value: int) -> None:
    payload = payload_of(made())
    payload[offset] = value
    with pytest.raises(CursorError, match=INVALID):
        cursor.decode(forged(bytes(payload)), BATCH, None)


@pytest.mark.parametrize(
    "change", [b"\x00", b"\x00" * 3, b""], ids=["longer", "3-longer", "shorter"]
)
def test_a_payload_of_another_length_with_a_right_digest_is_refused(change: bytes) -> None:
    payload = bytes(payload_of(made()))
    payload = payload + change if change else payload[:-1]
    with pytest.raises(CursorError, match=INVALID):
        cursor.decode(forged(payload), BATCH, None)


@pytest.mark.parametrize("tie_follows", [False, True])
def test_the_tie_hint_survives_the_round_trip(tie_follows: bool) -> None:
    position = Position(POSITION.created_at, uuid4(), tie_follows=tie_follows)
    assert cursor.decode(made(position=position), BATCH, None).tie_follows is tie_follows
