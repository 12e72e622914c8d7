"""Query parameters -> a validated, typed request (or a 400 naming the parameter)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from werkzeug.datastructures import MultiDict

from calls_batch_get.cursor import CursorError, Position, decode
from calls_batch_get.errors import ApiError, ErrorCode, ParameterErrorBody
from calls_batch_get.models import ContactStatus

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# Past any real batch size, and inside every integer type between here and PostgreSQL.
MAX_OFFSET = 2_147_483_647

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# A sign and digits. Any number of digits is an integer; past a bound it is judged by its length
# alone, so that no input reaches int() (which refuses 4,300 digits). (No "0*" before the digits:
# on a long run of zeros that fails to match, the regex would backtrack quadratically.)
_INTEGER = re.compile(r"(-?)([0-9]+)")

T = TypeVar("T")


class ParamError(ApiError):
    """A query parameter is missing or malformed (400); the message and ``parameter`` name it."""

    status = 400
    code = ErrorCode.INVALID_PARAMETER

    def __init__(self, message: str, *, parameter: str) -> None:
        super().__init__(message)
        self.parameter = parameter

    def body(self) -> ParameterErrorBody:
        return ParameterErrorBody(error=self.message, code=self.code, parameter=self.parameter)


class BatchQuery(BaseModel):
    model_config = ConfigDict(frozen=True)

    batch_id: UUID
    contact_status: ContactStatus | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    # Set by contact_cursor: the page starts after this contact (and offset is not used).
    after: Position | None = None


def _single(args: MultiDict[str, str], name: str) -> str | None:
    values = args.getlist(name)
    if len(values) > 1:
        raise ParamError(f"{name} query parameter is given more than once", parameter=name)
    return values[0] if values else None


def _batch_id(raw: str | None) -> UUID:
    if raw is None or raw == "":
        raise ParamError("batch_id query parameter is required", parameter="batch_id")
    if not _UUID.fullmatch(raw):
        raise ParamError("batch_id must be a UUID", parameter="batch_id")
    return UUID(raw)


def _contact_status(raw: str) -> ContactStatus:
    try:
        return ContactStatus(raw)
    except ValueError:
        allowed = ", ".join(s.value for s in ContactStatus)
        raise ParamError(
            f"contact_status must be one of: {allowed}", parameter="contact_status"
        ) from None


def _integer(name: str, raw: str, bound: int) -> int:
    """The value; one with more digits than ``bound`` reads as ``bound + 1`` (or its negative)."""
    match = _INTEGER.fullmatch(raw)
    if match is None:
        raise ParamError(f"{name} must be an integer", parameter=name)
    sign, digits = match.groups()
    digits = digits.lstrip("0") or "0"
    value = bound + 1 if len(digits) > len(str(bound)) else int(digits)
    return -value if sign else value


def _limit(raw: str) -> int:
    value = _integer("contact_limit", raw, MAX_LIMIT)
    if value < 1:
        raise ParamError("contact_limit must be at least 1", parameter="contact_limit")
    return min(value, MAX_LIMIT)


def _offset(raw: str) -> int:
    value = _integer("contact_offset", raw, MAX_OFFSET)
    if value < 0:
        raise ParamError("contact_offset must be at least 0", parameter="contact_offset")
    if value > MAX_OFFSET:
        raise ParamError(
            f"contact_offset must be at most {MAX_OFFSET}", parameter="contact_offset"
        )
    return value


def _optional(
    args: MultiDict[str, str], name: str, parse: Callable[[str], T], default: T
) -> T:
    raw = _single(args, name)
    return default if raw is None else parse(raw)


def _cursor(
    raw: str | None, batch_id: UUID, status: ContactStatus | None, offset_given: bool
) -> Position | None:
    if raw is None:
        return None
    if offset_given:
        raise ParamError(
            "contact_cursor cannot be combined with contact_offset", parameter="contact_cursor"
        )
    try:
        return decode(raw, batch_id, status)
    except CursorError as error:
        raise ParamError(str(error), parameter="contact_cursor") from None


def parse_query(args: MultiDict[str, str]) -> BatchQuery:
    """Checks the parameters in the documented order; unknown parameters are ignored."""
    batch_id = _batch_id(_single(args, "batch_id"))
    status: ContactStatus | None = _optional(args, "contact_status", _contact_status, None)
    limit = _optional(args, "contact_limit", _limit, DEFAULT_LIMIT)
    raw_offset = _single(args, "contact_offset")
    return BatchQuery(
        batch_id=batch_id,
        contact_status=status,
        limit=limit,
        offset=0 if raw_offset is None else _offset(raw_offset),
        after=_cursor(_single(args, "contact_cursor"), batch_id, status, raw_offset is not None),
    )
