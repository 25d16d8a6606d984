"""The request core shared by the clients: limiter, status mapping, retries of idempotent calls, metrics."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

import httpx
import structlog
from redis.exceptions import RedisError

from service.givenergy._errors import (
    STATUS_ERRORS,
    GivEnergyError,
    RateLimitedError,
    UnexpectedResponseError,
    UpstreamUnavailableError,
    UpstreamValidationError,
)
from service.givenergy._metrics import REQUESTS, RETRIES
from service.givenergy._ratelimit import GLOBAL_BUCKET, CredentialLimiter, Lane

log = structlog.get_logger("service.givenergy")


def connection_pool(base_url: str, *, timeout: float, transport: httpx.AsyncBaseTransport | None = None,
                    event_hooks: Mapping[str, list[Any]] | None = None) -> httpx.AsyncClient:
    """An httpx connection pool to a GivEnergy API: paths resolve below ``base_url``, JSON is asked for, the
    User-Agent is givfleet's and redirects are not followed."""
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/") + "/",
        timeout=timeout,
        transport=transport,
        follow_redirects=False,
        headers={"Accept": "application/json", "User-Agent": "givfleet"},
        event_hooks=event_hooks,
    )


class PoolOwner:
    """Something holding a connection pool (``_http``): `aclose` closes it, and so does leaving ``async with``."""

    _http: httpx.AsyncClient

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How idempotent reads are retried on 5xx, 504, timeouts, connection errors and 429.

    Writes are never retried by the client.

    Attributes:
        max_attempts: Attempts in total, the first included.
        base_delay: First backoff in seconds; doubles per attempt, with full jitter.
        max_delay: Cap of one backoff.
        total_seconds: No new attempt starts later than this after the first (429 pauses excepted, they
            are bounded by the server's ``Retry-After``).
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0
    total_seconds: float = 60.0

    def backoff(self, attempt: int) -> float:
        """The jittered delay before attempt ``attempt + 1`` (``attempt`` >= 1)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))  # noqa: S311


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _header_int(response: httpx.Response, name: str) -> int | None:
    raw = response.headers.get(name)
    if raw is None:
        return None
    try:
        return int(float(raw))
    except ValueError:
        return None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


async def _quietly(call: Awaitable[Any], endpoint: str) -> None:
    try:
        await call
    except RedisError as exc:
        log.warning("givenergy.limiter_unavailable", endpoint=endpoint, error=type(exc).__name__)


def error_for(response: httpx.Response, endpoint: str) -> GivEnergyError:
    """Map a non-2xx response to the exception tree."""
    status = response.status_code
    body = _json_or_none(response)
    message = body.get("message") if isinstance(body, dict) else None
    text = str(message) if message else response.reason_phrase or "request failed"
    plain = STATUS_ERRORS.get(status)
    if plain is not None:
        return plain(text, endpoint=endpoint, status_code=status)
    if status == 422:
        errors = body.get("errors") if isinstance(body, dict) else None
        return UpstreamValidationError(
            text, errors=errors if isinstance(errors, dict) else None, endpoint=endpoint, status_code=status
        )
    if status == 429:
        return RateLimitedError(
            text, retry_after=parse_retry_after(response.headers.get("Retry-After")), endpoint=endpoint
        )
    if status >= 500:
        return UpstreamUnavailableError(text, endpoint=endpoint, status_code=status)
    return UnexpectedResponseError(text, endpoint=endpoint, status_code=status)


class RequestCore:
    """Sends one logical request: limiter slot, HTTP exchange, header feedback, mapped errors, retries."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        limiter: CredentialLimiter | None,
        retry: RetryPolicy,
        max_limiter_wait: float | None,
    ) -> None:
        self.http = http
        self.limiter = limiter
        self.retry = retry
        self.max_limiter_wait = max_limiter_wait

    async def send(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        lane: Lane,
        idempotent: bool,
        bucket: str = GLOBAL_BUCKET,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        request_timeout: float | None = None,
        accept_redirects: bool = False,
    ) -> httpx.Response:
        """Send with retries (idempotent calls only) and return the 2xx response.

        Raises:
            GivEnergyError: A subclass describing the failure.
        """
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._send_once(
                    method,
                    path,
                    endpoint=endpoint,
                    lane=lane,
                    bucket=bucket,
                    params=params,
                    json=json,
                    data=data,
                    headers=headers,
                    request_timeout=request_timeout,
                    accept_redirects=accept_redirects,
                )
            except RateLimitedError as exc:
                if not idempotent or attempt >= self.retry.max_attempts or exc.status_code is None:
                    raise
                reason = "429"
                # With a limiter the pause is shared and the next acquire waits it out.
                if self.limiter is not None:
                    delay = 0.0
                else:
                    delay = exc.retry_after if exc.retry_after is not None else self.retry.max_delay
            except UpstreamUnavailableError as exc:
                if not idempotent or attempt >= self.retry.max_attempts:
                    raise
                reason = str(exc.status_code) if exc.status_code is not None else "transport"
                delay = self.retry.backoff(attempt)
                if time.monotonic() - started + delay > self.retry.total_seconds:
                    raise
            RETRIES.labels(endpoint=endpoint, reason=reason).inc()
            log.info("givenergy.retry", endpoint=endpoint, reason=reason, attempt=attempt, delay=round(delay, 3))
            if delay > 0:
                await asyncio.sleep(delay)

    async def _send_once(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        lane: Lane,
        bucket: str,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None,
        json: Any,
        data: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        request_timeout: float | None,
        accept_redirects: bool,
    ) -> httpx.Response:
        lane_label = lane.name.lower()
        limiter = self.limiter
        if limiter is not None and not limiter.has_bucket(bucket):
            bucket = GLOBAL_BUCKET
        grant = None
        if limiter is not None:
            try:
                grant = await limiter.acquire(lane=lane, bucket=bucket, max_wait=self.max_limiter_wait)
            except RedisError as exc:
                # Without the shared budget nothing may be sent: the caller retries later.
                raise RateLimitedError(
                    f"shared rate limiter unavailable ({type(exc).__name__})", endpoint=endpoint, status_code=None
                ) from None
        try:
            response = await self.http.request(
                method,
                path,
                params=params,
                json=json,
                data=data,
                headers=headers,
                timeout=request_timeout if request_timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException:
            REQUESTS.labels(endpoint=endpoint, status="timeout", lane=lane_label).inc()
            if limiter is not None and grant is not None:
                await _quietly(limiter.settle(grant), endpoint)
            raise UpstreamUnavailableError(f"timed out{_outcome_note(method)}", endpoint=endpoint) from None
        except httpx.TransportError as exc:
            REQUESTS.labels(endpoint=endpoint, status="transport_error", lane=lane_label).inc()
            if limiter is not None and grant is not None:
                await _quietly(limiter.settle(grant), endpoint)
            raise UpstreamUnavailableError(
                f"connection failed: {type(exc).__name__}{_outcome_note(method)}", endpoint=endpoint
            ) from None
        REQUESTS.labels(endpoint=endpoint, status=str(response.status_code), lane=lane_label).inc()
        if limiter is not None and grant is not None:
            # The answer is what matters now: a limiter failure here must not turn a done write into an error.
            await _quietly(
                limiter.settle(
                    grant,
                    limit=_header_int(response, "X-RateLimit-Limit"),
                    remaining=_header_int(response, "X-RateLimit-Remaining"),
                ),
                endpoint,
            )
            if response.status_code == 429:
                await _quietly(limiter.pause(bucket, parse_retry_after(response.headers.get("Retry-After"))), endpoint)
        if response.is_success or (accept_redirects and response.is_redirect):
            return response
        raise error_for(response, endpoint)


def _outcome_note(method: str) -> str:
    """What a caller must know when a request got no answer: a write may or may not have been applied."""
    return "" if method.upper() in {"GET", "HEAD"} else " (the write may or may not have been applied)"
