"""The one error type the handler turns into a response; each concern subclasses it."""

from __future__ import annotations


class ApiError(Exception):
    """A failure with a documented status. The message is shown to the caller as is, so it is
    always fixed text or names a parameter: never a token, a database message or a stack trace."""

    status = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
