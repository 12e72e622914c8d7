"""One protocol for the three reads of a request; the handler knows nothing of PostgREST or SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from calls_batch_get.errors import ApiError
from calls_batch_get.models import Batch, Contact
from calls_batch_get.params import BatchQuery


class StoreError(ApiError):
    """A read failed. The message is fixed and safe to show; the cause is chained for the log."""


@dataclass(frozen=True)
class ContactsPage:
    contacts: list[Contact]
    total: int


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
