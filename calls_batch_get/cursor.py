"""The keyset cursor of ``contact_cursor`` / ``next_cursor``: an opaque, URL-safe token naming the
last contact of a page, bound to the batch and the status filter it was made for.

It is checked, not secret: a digest catches a cursor that was cut, altered or made up, and the
batch and filter inside it must be the request's. A forged cursor could only name a position in
a batch its bearer may read anyway (the batch is authorised on every request), so no key is
needed, and every instance reads every other instance's cursors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from calls_batch_get.models import ContactStatus

_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# version, batch id, status (0 = no filter), flags, created_at in microseconds since the epoch, id
_LAYOUT = struct.Struct(">B16sBBq16s")
_TIE_FOLLOWS = 1
_DIGEST_BYTES = 8
_DIGEST_KEY = b"calls-batch-get contact cursor"
_STATUSES: tuple[ContactStatus | None, ...] = (None, *ContactStatus)
# Longer than any cursor we make; a longer string is refused before it is decoded.
MAX_CURSOR_LENGTH = 512
_URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


class CursorError(ValueError):
    """The cursor is not one of ours for this batch and filter; the message says why."""


@dataclass(frozen=True)
class Position:
    """A contact's place in the page order (created_at, then id).

    ``tie_follows``: when the page was read, the next contact shared this one's created_at (an
    upload's contacts all do). A hint for the supabase-py store, which reads the rest of a tie and
    what follows it as two ranges: it tells which of them will most likely hold the next page.
    """

    created_at: datetime
    id: UUID
    tie_follows: bool = False


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=_DIGEST_BYTES, key=_DIGEST_KEY).digest()


def encode(batch_id: UUID, status: ContactStatus | None, after: Position) -> str:
    micros = (after.created_at - _EPOCH) // timedelta(microseconds=1)
    flags = _TIE_FOLLOWS if after.tie_follows else 0
    payload = _LAYOUT.pack(
        _VERSION, batch_id.bytes, _STATUSES.index(status), flags, micros, after.id.bytes
    )
    return base64.urlsafe_b64encode(payload + _digest(payload)).rstrip(b"=").decode("ascii")


def decode(raw: str, batch_id: UUID, status: ContactStatus | None) -> Position:
    """The position after which the next page starts; CursorError unless the cursor is intact
    and was made for this batch and this status filter."""
    if len(raw) > MAX_CURSOR_LENGTH or not _URL_SAFE.fullmatch(raw):
        raise CursorError("contact_cursor is not a valid cursor")
    try:
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise CursorError("contact_cursor is not a valid cursor") from None
    payload, digest = data[:-_DIGEST_BYTES], data[-_DIGEST_BYTES:]
    # base64 may leave spare bits in the last character: only our own spelling of the bytes
    # counts. (Today's 51 bytes leave none; a change of layout must not open that hole.)
    canonical = base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") == raw
    if not canonical or len(payload) != _LAYOUT.size:
        raise CursorError("contact_cursor is not a valid cursor")
    # Not a secret, but no reason to compare digests in variable time either.
    if not hmac.compare_digest(digest, _digest(payload)):
        raise CursorError("contact_cursor is not a valid cursor")
    version, batch_bytes, status_index, flags, micros, id_bytes = _LAYOUT.unpack(payload)
    if version != _VERSION or status_index >= len(_STATUSES) or flags & ~_TIE_FOLLOWS:
        raise CursorError("contact_cursor is not a valid cursor")
    if UUID(bytes=batch_bytes) != batch_id or _STATUSES[status_index] != status:
        raise CursorError("contact_cursor belongs to another batch or contact_status")
    try:
        created_at = _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        # Only a cursor made by hand gets here: ours hold timestamps Python could read.
        raise CursorError("contact_cursor is not a valid cursor") from None
    return Position(
        created_at=created_at, id=UUID(bytes=id_bytes), tie_follows=bool(flags & _TIE_FOLLOWS)
    )

