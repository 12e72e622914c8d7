"""One protocol for the read of a request; the handler knows nothing of PostgREST or SQL.

Both stores run the same read, the database function ``public.calls_batch_get`` (migration
20261202000000_read_as_caller.sql), as the caller and under row-level security, and hand its
JSON document to ``parse_read``: the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from calls_batch_get.auth import Caller
from calls_batch_get.errors import ApiError, ErrorCode
from calls_batch_get.models import Batch, Contact
from calls_batch_get.params import BatchQuery

# The database function both stores call, and the name of its parameters (as the API's).
READ_FUNCTION = "calls_batch_get"


class StoreError(ApiError):
    """A read failed. The message is fixed and safe to show; the cause is chained for the log."""

    code = ErrorCode.DATABASE_ERROR


@dataclass(frozen=True)
class ContactsPage:
    """One page of contacts; ``total`` is the batch's counter for the filter, ``has_more`` says
    whether a contact follows the page's last one, ``tie_follows`` whether that next contact
    shares the last one's created_at."""

    contacts: list[Contact]
    total: int
    has_more: bool = False
    tie_follows: bool = False

    @classmethod
    def of(cls, rows: list[Contact], limit: int, total: int) -> ContactsPage:
        """The page from the ``limit + 1`` rows a store reads: the extra one, when there is one,
        is only looked at."""
        if len(rows) <= limit:
            return cls(contacts=rows, total=total)
        return cls(
            contacts=rows[:limit],
            total=total,
            has_more=True,
            tie_follows=rows[limit].created_at == rows[limit - 1].created_at,
        )


@dataclass(frozen=True)
class BatchRead:
    """What the caller may see, and no more.

    ``agency_id`` is None when the user has no agency; ``batch`` is None when the batch does not
    exist in that agency; ``page`` is only filled in when ``batch`` is.
    """

    agency_id: UUID | None
    batch: Batch | None = None
    page: ContactsPage = field(default_factory=lambda: ContactsPage(contacts=[], total=0))


class _Document(BaseModel):
    """What ``public.calls_batch_get`` returns: exactly these keys, or the read fails."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agency_id: UUID | None
    batch: Batch | None
    contacts: list[Contact]


def parse_read(document: str | bytes, query: BatchQuery) -> BatchRead:
    """The read function's JSON text, validated by pydantic's own parser straight into the
    models (no Python objects built only to be read once). Raises pydantic's ValidationError."""
    read = _Document.model_validate_json(document)
    # The database has already kept the batch to the caller's agency, twice (the function's
    # condition, then the policies); a batch of another agency here is still not shown.
    if read.agency_id is None:
        return BatchRead(agency_id=None)
    if read.batch is None or read.batch.agency_id != read.agency_id:
        return BatchRead(agency_id=read.agency_id)
    return BatchRead(
        agency_id=read.agency_id,
        batch=read.batch,
        # The total is the batch's own counter: no second count of its contacts.
        page=ContactsPage.of(
            read.contacts, query.limit, total=read.batch.contacts_with(query.contact_status)
        ),
    )


class Store(Protocol):
    def read(self, caller: Caller, query: BatchQuery) -> BatchRead:
        """The caller's agency, the batch scoped to it, and one page of its contacts, read as
        the caller (under row-level security).

        Raises StoreError when the read fails; an unauthorised result is reported through
        BatchRead, never as data.
        """
        ...

    def warm(self) -> None:
        """Opens what the first read would have to open (a connection), off any request's
        path; bounded, and never raises: a failure is logged and the first read tries again."""
        ...

    def ping(self) -> bool:
        """Whether the database answers now, asked with no user's token and reading nothing
        (the health check); bounded by the store's deadline, and never raises."""
        ...

    def close(self) -> None:
        """Releases connections and threads; called once, when the instance shuts down."""
        ...
