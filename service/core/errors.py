"""Domain errors. Adapters (REST, GraphQL, CLI) translate them into their own error shapes."""

from __future__ import annotations


class GivfleetError(Exception):
    """Base of every error the domain raises on purpose; its message is safe to show a user."""


class NotFoundError(GivfleetError):
    """The thing does not exist, or belongs to another tenant (the two are never told apart)."""


class ConflictError(GivfleetError):
    """The request conflicts with the current state (e.g. a duplicate slug)."""


class InvalidInputError(GivfleetError):
    """The input is malformed or out of range."""


class PermissionDeniedError(GivfleetError):
    """The principal is authenticated but its role does not allow the action."""


class UpstreamError(GivfleetError):
    """The GivEnergy cloud refused or failed a read made for the caller; the message says why in user terms.

    Attributes:
        code: A stable ``UPSTREAM_*`` code naming the kind of refusal.
        status: The upstream HTTP status, when there was one.
        retry_after: Seconds after which a new attempt may succeed, when known.
    """

    def __init__(self, message: str, *, code: str = "UPSTREAM_ERROR", status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.retry_after = retry_after
