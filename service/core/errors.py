"""Domain errors. Adapters (REST, GraphQL, CLI) translate them into their own error shapes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

_Found = TypeVar("_Found")


class GivfleetError(Exception):
    """Base of every error the domain raises on purpose; its message is safe to show a user.

    Attributes:
        field: The input field at fault, when one is, by its Python name (``expires_at``): REST reports it under
            that name (the JSON key), GraphQL under its camelCase input name (``expiresAt``).
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(GivfleetError):
    """The thing does not exist, or belongs to another tenant (the two are never told apart)."""


def found(value: _Found | None, message: str) -> _Found:
    """``value``, or :class:`NotFoundError` with ``message`` when there is none."""
    if value is None:
        raise NotFoundError(message)
    return value


class ConflictError(GivfleetError):
    """The request conflicts with the current state (e.g. a duplicate slug)."""


class InvalidInputError(GivfleetError):
    """The input is malformed or out of range."""


class InvalidParameterError(InvalidInputError):
    """A request parameter is malformed or out of range (REST: 400; GraphQL: ``BAD_USER_INPUT``).

    Attributes:
        parameter: The parameter's name as the caller sent it (also ``field``).
        allowed: The valid values, when they are few.
    """

    def __init__(self, message: str, *, parameter: str, allowed: list[str] | None = None) -> None:
        super().__init__(message, field=parameter)
        self.parameter = parameter
        self.allowed = allowed


def not_in_mirror(noun: str, upstream_id: int, *, field: str | None = None) -> InvalidInputError:
    """The error refusing an upstream id (``noun``: account, site) the tenant's mirror does not hold: whatever
    names it would apply to nothing, and a typo must not pass unnoticed."""
    return InvalidInputError(f"the tenant has no {noun} {upstream_id} (sync its fleet first, or check the id)",
                             field=field)


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


@dataclass(frozen=True)
class ErrorKind:
    """How the adapters show a domain error: a stable GraphQL ``code`` and the REST status."""

    code: str
    http_status: int


_KINDS: dict[type[GivfleetError], ErrorKind] = {
    NotFoundError: ErrorKind("NOT_FOUND", 404),
    PermissionDeniedError: ErrorKind("FORBIDDEN", 403),
    InvalidParameterError: ErrorKind("BAD_USER_INPUT", 400),  # before its base class: the first match wins
    InvalidInputError: ErrorKind("BAD_USER_INPUT", 422),
    ConflictError: ErrorKind("CONFLICT", 409),
}
# Upstream refusals a retry will not cure are 424 (the request depends on GivEnergy, which said no); a transient
# outage or an exhausted budget is 503; anything else GivEnergy answered is 502. Never a 500.
FAILED_DEPENDENCY = 424
_UPSTREAM_STATUS = {"UPSTREAM_RATE_LIMITED": 503, "UPSTREAM_UNAVAILABLE": 503, "UPSTREAM_ERROR": 502}


def kind_of(error: GivfleetError) -> ErrorKind:
    """The one map from domain errors to their REST status and GraphQL code (both adapters use it)."""
    if isinstance(error, UpstreamError):
        return ErrorKind(error.code, _UPSTREAM_STATUS.get(error.code, FAILED_DEPENDENCY))
    return next((kind for cls, kind in _KINDS.items() if isinstance(error, cls)), ErrorKind("BAD_REQUEST", 400))
