"""The one error type the handler turns into a response; each concern subclasses it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class ErrorCode(StrEnum):
    """What a client branches on (refresh the session, fix a parameter, retry later) instead of
    matching the message, which is for people and may be reworded."""

    METHOD_NOT_ALLOWED = "method_not_allowed"
    # Names of failures, not secrets.
    MISSING_TOKEN = "missing_token"  # noqa: S105
    INVALID_TOKEN = "invalid_token"  # noqa: S105
    TOKEN_EXPIRED = "token_expired"  # noqa: S105
    INVALID_PARAMETER = "invalid_parameter"
    NO_AGENCY = "no_agency"
    BATCH_NOT_FOUND = "batch_not_found"
    DATABASE_ERROR = "database_error"
    AUTH_UNAVAILABLE = "auth_unavailable"
    INTERNAL_ERROR = "internal_error"


class ErrorBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    error: str
    code: ErrorCode


class ParameterErrorBody(ErrorBody):
    parameter: str


class ApiError(Exception):
    """A failure with a documented status. The message is shown to the caller as is, so it is
    always fixed text or names a parameter: never a token, a database message or a stack trace."""

    status = 500
    code = ErrorCode.INTERNAL_ERROR

    def __init__(
        self, message: str, status: int | None = None, code: ErrorCode | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    def body(self) -> ErrorBody:
        return ErrorBody(error=self.message, code=self.code)

    def headers(self) -> dict[str, str]:
        """Headers this status calls for beside the common ones."""
        return {}
