"""Live reads: what the mirror does not hold, read through from the GivEnergy cloud for one caller.

Every read is one upstream call made by the tenant's client in the **interactive** lane (its rate limiter is
shared with syncs and campaigns, which yield to it), cached in Redis for a short time so a portal refreshing a
page does not spend the tenant's budget twice. Upstream failures become :class:`~service.core.errors.UpstreamError`
with an ``UPSTREAM_*`` code; fields that can carry secrets are withheld; role and subtree rules are checked
before any upstream call. The GraphQL live fields and the REST ``/live`` endpoints are adapters over
:class:`LiveService`.

Results are JSON (the upstream payloads, as typed by :mod:`service.givenergy` and serialised), since their
shapes are the cloud's, not ours.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel
from redis.asyncio import Redis

from service.core import limits
from service.core.errors import InvalidInputError, UpstreamError
from service.core.principal import Principal
from service.core.tenancy import TenantId
from service.givenergy import (
    ForbiddenError,
    GivEnergyClient,
    GivEnergyError,
    Lane,
    NotFoundError,
    PaymentRequiredError,
    RateLimitedError,
    UnauthorisedError,
    UpstreamUnavailableError,
    UpstreamValidationError,
)
from service.policy import Action, authorize
from service.upstream import NoCredentialError, Upstream

if TYPE_CHECKING:
    from service.runtime import Resources

T = TypeVar("T")
DEFAULT_TTL_SECONDS = 30
MAX_ITEMS = 1000
# Fields of upstream payloads never passed on (a smart device's ``other_data`` can hold its local key).
_WITHHELD = {"other_data"}

ClientOpener = Callable[[], Awaitable[GivEnergyClient]]
"""Builds the tenant's upstream client (interactive lane); the reader closes it."""
CloseLater = Callable[[Callable[[], Awaitable[None]]], None]
"""Registers a coroutine function to run when the request is over (after its response is sent)."""


_UPSTREAM_CODES: list[tuple[type[GivEnergyError], str, str]] = [
    (UnauthorisedError, "UPSTREAM_UNAUTHORISED", "GivEnergy refused the tenant's credential (unauthorised)"),
    (PaymentRequiredError, "UPSTREAM_NO_SUBSCRIPTION", "GivEnergy requires a subscription for this"),
    (ForbiddenError, "UPSTREAM_FORBIDDEN", "GivEnergy does not let the tenant's credential read this"),
    (NotFoundError, "UPSTREAM_NOT_FOUND", "GivEnergy does not know this device"),
    (RateLimitedError, "UPSTREAM_RATE_LIMITED", "the tenant's GivEnergy request budget is exhausted; retry shortly"),
    (UpstreamValidationError, "UPSTREAM_REJECTED", "GivEnergy rejected the request"),
    (UpstreamUnavailableError, "UPSTREAM_UNAVAILABLE", "GivEnergy is unavailable; retry shortly"),
]


def upstream_error(exc: GivEnergyError) -> UpstreamError:
    """The user-facing error for an upstream failure."""
    retry_after = exc.retry_after if isinstance(exc, RateLimitedError) else None
    for kind, code, message in _UPSTREAM_CODES:
        if isinstance(exc, kind):
            return UpstreamError(message, code=code, status=exc.status_code, retry_after=retry_after)
    return UpstreamError("GivEnergy answered unexpectedly", code="UPSTREAM_ERROR", status=exc.status_code)


def to_json(value: Any) -> Any:
    """An upstream payload as plain JSON, without the withheld fields."""
    if isinstance(value, BaseModel):
        # By alias: upstream's own field names (``import``, not the Python-safe ``import_``).
        return {k: v for k, v in value.model_dump(mode="json", by_alias=True).items() if k not in _WITHHELD}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items() if k not in _WITHHELD}
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


async def take(iterator: AsyncIterator[T], limit: int) -> list[T]:
    """The first ``limit`` items of an async iterator (stops paging upstream once it has them)."""
    items: list[T] = []
    async for item in iterator:
        if len(items) >= limit:
            break
        items.append(item)
    return items


def tenant_client_opener(upstream: Upstream, tenant_id: TenantId) -> ClientOpener:
    """How to open the tenant's upstream client in the interactive lane (its best working API token, chosen by
    :class:`~service.upstream.Upstream` on a short session of its own when the first read misses the cache)."""
    return lambda: upstream.open_client(tenant_id, Lane.INTERACTIVE)


class LiveReader:
    """Live reads for one tenant and one request: cached, rate-limited (interactive lane), errors translated.

    The upstream client is opened on the first read that misses the cache and shared by the request's other
    reads (one connection pool, one TLS handshake); it is closed by :meth:`aclose`, which ``close_later``
    schedules for after the response when given.
    """

    def __init__(self, tenant_id: TenantId, open_client: ClientOpener, *, close_later: CloseLater | None = None,
                 redis: Redis | None = None, namespace: str = "givfleet",
                 ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        self.tenant_id = tenant_id
        self._open_client = open_client
        self._close_later = close_later
        self._redis = redis
        self._namespace = namespace
        self._ttl = ttl_seconds
        self._client: GivEnergyClient | None = None
        self._lock = asyncio.Lock()

    async def _shared_client(self) -> GivEnergyClient:
        async with self._lock:
            if self._client is None:
                self._client = await self._open_client()
                if self._close_later is not None:
                    self._close_later(self.aclose)
            return self._client

    async def aclose(self) -> None:
        """Close the upstream client, if one was opened."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _key(self, name: str, args: tuple[Any, ...]) -> str:
        digest = hashlib.sha256(json.dumps([name, *args], default=str).encode()).hexdigest()[:32]
        return f"{self._namespace}:live:{self.tenant_id}:{digest}"

    async def read(self, name: str, args: tuple[Any, ...], fetch: Callable[[GivEnergyClient], Awaitable[Any]]
                   ) -> Any:
        """``fetch`` through the tenant's client, cached under (``name``, ``args``) for a short time.

        Raises:
            UpstreamError: GivEnergy refused or failed the read, or the tenant has no usable credential.
        """
        key = self._key(name, args)
        if self._redis is not None:
            cached = await self._redis.get(key)
            if cached is not None:
                return json.loads(cached)
        try:
            value = to_json(await fetch(await self._shared_client()))
        except GivEnergyError as exc:
            raise upstream_error(exc) from exc
        if self._redis is not None:
            await self._redis.set(key, json.dumps(value), ex=self._ttl)
        return value


def live_reader(resources: Resources, principal: Principal, *, close_later: CloseLater | None = None) -> LiveReader:
    """The live reader of the principal's tenant for one request (REST and GraphQL): its credential is looked up
    and its client opened only when a read misses the cache."""
    return LiveReader(principal.tenant_id, tenant_client_opener(resources.upstream, principal.tenant_id),
                      close_later=close_later, redis=resources.redis, namespace=resources.settings.redis.namespace)


def _limit(value: int) -> int:
    if not 1 <= value <= MAX_ITEMS:
        raise InvalidInputError(f"limit must be between 1 and {MAX_ITEMS}")
    return value


class LiveService:
    """The live reads a caller may make, with their role and subtree rules.

    Inverter reads take a serial the adapter has already resolved through the caller's scoped mirror (a foreign
    or out-of-subtree serial is "not found" there, before any upstream call). Devices the mirror does not hold
    (EMS units, EV chargers, smart devices) cannot be placed in a subtree, so only whole-tenant callers may read
    them.

    Args:
        caller: Who reads (role and subtree restriction, checked by :mod:`service.policy`).
        reader: The tenant's live reader; ``None`` when the tenant has no upstream access at all.
    """

    def __init__(self, caller: Principal, reader: LiveReader | None) -> None:
        self._caller = caller
        self._reader = reader

    def _read(self, name: str, args: tuple[Any, ...], fetch: Callable[[GivEnergyClient], Awaitable[Any]]
              ) -> Awaitable[Any]:
        if self._reader is None:
            raise NoCredentialError()
        return self._reader.read(name, args, fetch)

    def _whole_tenant(self) -> None:
        authorize(self._caller, Action.LIVE_UNMIRRORED_READ)

    async def system_data(self, serial: str) -> Any:
        """The inverter's latest system data (solar, grid, battery, inverter, consumption)."""
        return await self._read("system_data", (serial,), lambda c: c.get_system_data(serial))

    async def meter_data(self, serial: str) -> Any:
        """The inverter's latest meter data (today and total energies)."""
        return await self._read("meter_data", (serial,), lambda c: c.get_meter_data(serial))

    async def events(self, serial: str, *, start: datetime | None = None, end: datetime | None = None,
                     cleared: bool | None = None, limit: int = 100) -> Any:
        """The inverter's fault events between two times, at most ``limit`` (1 to :data:`MAX_ITEMS`).

        Raises:
            InvalidInputError: A time has no UTC equivalent, ``end`` is before ``start``, or ``limit`` is out of
                range.
        """
        count = _limit(limit)
        start = limits.moment(start, parameter="start") if start is not None else None
        end = limits.moment(end, parameter="end") if end is not None else None
        limits.period(start, end)
        return await self._read("events", (serial, start, end, cleared, count),
                                lambda c: take(c.iter_events(serial, start=start, end=end, cleared=cleared), count))

    async def data_points(self, serial: str, day: date, *, limit: int = 300) -> Any:
        """The inverter's data points of one day (its local date), at most ``limit``."""
        count = _limit(limit)
        return await self._read("data_points", (serial, day, count),
                                lambda c: take(c.iter_data_points(serial, day), count))

    async def energy_flows(self, serial: str, start: date, end: date, *, grouping: int = 1,
                           types: list[int] | None = None) -> Any:
        """Energy flows between two dates; ``grouping`` 0 half-hourly, 1 daily, 2 monthly, 3 yearly, 4 total.

        Raises:
            InvalidInputError: ``grouping`` is not 0 to 4, or ``end`` is before ``start``.
        """
        if grouping not in range(5):
            raise InvalidInputError("grouping must be 0 (half-hourly) to 4 (total)")
        limits.period(start, end)
        return await self._read("energy_flows", (serial, start, end, grouping, types),
                                lambda c: c.get_energy_flows(serial, start, end, grouping=grouping, types=types))

    async def settings(self, serial: str) -> Any:
        """The inverter's settings catalogue (operator role).

        Raises:
            PermissionDeniedError: The caller is below the operator role.
        """
        authorize(self._caller, Action.LIVE_SETTINGS_READ)
        return await self._read("settings", (serial,), lambda c: c.get_settings(serial))

    async def presets(self, serial: str) -> Any:
        """The inverter's setting presets (operator role).

        Raises:
            PermissionDeniedError: The caller is below the operator role.
        """
        authorize(self._caller, Action.LIVE_SETTINGS_READ)
        return await self._read("presets", (serial,), lambda c: c.get_presets(serial))

    async def ems_system_data(self, serial: str) -> Any:
        """A Plant EMS's latest system data (whole-tenant callers only)."""
        self._whole_tenant()
        return await self._read("ems", (serial,), lambda c: c.get_ems_system_data(serial))

    async def ev_chargers(self, *, limit: int = 100) -> Any:
        """The tenant's EV chargers, at most ``limit`` (whole-tenant callers only)."""
        self._whole_tenant()
        count = _limit(limit)
        return await self._read("ev_chargers", (count,), lambda c: take(c.iter_ev_chargers(), count))

    async def ev_charger(self, uuid: str) -> Any:
        """An EV charger by UUID (whole-tenant callers only)."""
        self._whole_tenant()
        return await self._read("ev_charger", (uuid,), lambda c: c.get_ev_charger(uuid))

    async def smart_device(self, uuid: str) -> Any:
        """A smart device by UUID, its local keys withheld (whole-tenant callers only)."""
        self._whole_tenant()
        return await self._read("smart_device", (uuid,), lambda c: c.get_smart_device(uuid))

    async def smart_device_data(self, uuid: str, *, limit: int = 100) -> Any:
        """Data points of a smart device, at most ``limit`` (whole-tenant callers only)."""
        self._whole_tenant()
        count = _limit(limit)
        return await self._read("smart_device_data", (uuid, count),
                                lambda c: take(c.iter_smart_device_data(uuid), count))


__all__ = ["DEFAULT_TTL_SECONDS", "MAX_ITEMS", "ClientOpener", "CloseLater", "LiveReader", "LiveService",
           "NoCredentialError", "live_reader", "tenant_client_opener", "to_json", "upstream_error"]
