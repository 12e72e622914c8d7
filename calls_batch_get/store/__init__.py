"""One protocol for the three reads of a request; the handler knows nothing of PostgREST or SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from calls_batch_get.errors import ApiError, ErrorCode
from calls_batch_get.models import Batch, Contact
from calls_batch_get.params import BatchQuery


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


class Store(Protocol):
    def read(self, user_id: UUID, query: BatchQuery) -> BatchRead:
        """The user's agency, the batch scoped to it, and one page of its contacts.

        Raises StoreError ("Failed to fetch user" / "... batch" / "... contacts") when a read
        fails; an unauthorised result is reported through BatchRead, never as data.
        """
        ...

    def close(self) -> None:
        """Releases connections and threads; called once, when the instance shuts down."""
        ...
