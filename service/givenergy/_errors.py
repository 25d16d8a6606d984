"""The exception tree of the GivEnergy client.

Messages name the method and the route template, never the URL's query string, a token or a password,
so exceptions can be logged and shown to tenants as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class GivEnergyError(Exception):
    """Base of every error raised by the GivEnergy clients.

    Attributes:
        endpoint: The route template that failed, e.g. ``"GET /inverter/{serial}/settings"`` (may be empty).
        status_code: The HTTP status, when a response was received.
    """

    def __init__(self, message: str, *, endpoint: str = "", status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.status_code = status_code

    def __str__(self) -> str:
        where = f" [{self.endpoint}]" if self.endpoint else ""
        status = f" (HTTP {self.status_code})" if self.status_code is not None else ""
        return f"{self.message}{where}{status}"


class CredentialError(GivEnergyError):
    """The credential itself is not usable (401/402/403): surface it to the tenant, never retry."""


class UnauthorisedError(CredentialError):
    """401: the token is missing, invalid, expired or revoked (or the account lacks a subscription)."""


class PaymentRequiredError(CredentialError):
    """402: API access needs a paid subscription."""


class ForbiddenError(CredentialError):
    """403: the account may not use this endpoint or see this resource (scope, account type, subscription)."""


class NotFoundError(GivEnergyError):
    """404: the endpoint or resource does not exist (or is not visible to this account)."""


class UpstreamValidationError(GivEnergyError):
    """422: the request was rejected by validation.

    Attributes:
        errors: Field name -> list of messages, as returned in the ``errors`` object.
    """

    def __init__(
        self,
        message: str,
        *,
        errors: Mapping[str, Sequence[str]] | None = None,
        endpoint: str = "",
        status_code: int | None = 422,
    ) -> None:
        super().__init__(message, endpoint=endpoint, status_code=status_code)
        self.errors: dict[str, list[str]] = {k: [str(m) for m in v] for k, v in (errors or {}).items()}


class RateLimitedError(GivEnergyError):
    """429 (or the shared limiter could not grant a slot in time).

    Attributes:
        retry_after: Seconds after which a new attempt may succeed, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        endpoint: str = "",
        status_code: int | None = 429,
    ) -> None:
        super().__init__(message, endpoint=endpoint, status_code=status_code)
        self.retry_after = retry_after


class UpstreamUnavailableError(GivEnergyError):
    """5xx, 504, a timeout or a connection error: transient, reads are retried before this is raised.

    For a write this means the outcome is unknown: the request may or may not have reached the device.
    """


class UnexpectedResponseError(GivEnergyError):
    """Any other failure: 400, an unlisted 4xx, or a body that is not the JSON the contract promises."""


STATUS_ERRORS: Mapping[int, type[GivEnergyError]] = {
    401: UnauthorisedError,
    402: PaymentRequiredError,
    403: ForbiddenError,
    404: NotFoundError,
}
"""The statuses that map to one error class carrying nothing but the message, the endpoint and the status."""
