# mypy: disable-error-code="untyped-decorator"
# (strawberry.field(description=...) is typed as returning Any)
"""Live fields: what the mirror does not hold, read through from the GivEnergy cloud.

Each field is one upstream read made by the tenant's client in the **interactive** lane (its rate limiter is
shared with syncs and campaigns, which yield to it), cached in Redis for a short time so a portal refreshing a
page does not spend the tenant's budget twice. An upstream refusal is a GraphQL error with an ``UPSTREAM_*``
code and a sentence saying why, never a server error. Results are JSON (the upstream payloads, as typed by
:mod:`service.givenergy` and serialised), since their shapes are the cloud's, not ours.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime
from typing import Any, TypeVar, cast

import strawberry
from pydantic import BaseModel
from redis.asyncio import Redis
from strawberry.scalars import JSON

from service.core.errors import InvalidInputError, PermissionDeniedError
from service.core.tenancy import TenantId
from service.db.models.api_key import Role
from service.givenergy import (
    ForbiddenError,
    GivEnergyClient,
    GivEnergyError,
    NotFoundError,
    PaymentRequiredError,
    RateLimitedError,
    UnauthorisedError,
    UpstreamUnavailableError,
    UpstreamValidationError,
)
from service.gql.context import Info
from service.gql.errors import UpstreamError

T = TypeVar("T")
DEFAULT_TTL_SECONDS = 30
MAX_ITEMS = 1000
# Fields of upstream payloads never passed on (a smart device's ``other_data`` can hold its local key).
_WITHHELD = {"other_data"}

ClientOpener = Callable[[], Awaitable[GivEnergyClient]]
"""Builds the tenant's upstream client (interactive lane); the reader closes it."""
CloseLater = Callable[[Callable[[], Awaitable[None]]], None]
"""Registers a coroutine function to run when the request is over (after its response is sent)."""


class NoCredentialError(UpstreamError):
    """The tenant has no usable upstream credential."""


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
    for kind, code, message in _UPSTREAM_CODES:
        if isinstance(exc, kind):
            return UpstreamError(message, code=code, status=exc.status_code)
    return UpstreamError("GivEnergy answered unexpectedly", code="UPSTREAM_ERROR", status=exc.status_code)


def to_json(value: Any) -> Any:
    """An upstream payload as plain JSON."""
    if isinstance(value, BaseModel):
        return {k: v for k, v in value.model_dump(mode="json").items() if k not in _WITHHELD}
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


class LiveReader:
    """Live reads for one tenant and one request: cached, rate-limited (interactive lane), errors translated.

    The upstream client is opened on the first read that misses the cache and shared by the request's other
    live fields (one connection pool, one TLS handshake); it is closed by :meth:`aclose`, which ``close_later``
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
                   ) -> JSON:
        """``fetch`` through the tenant's client, cached under (``name``, ``args``) for a short time."""
        key = self._key(name, args)
        if self._redis is not None:
            cached = await self._redis.get(key)
            if cached is not None:
                return cast(JSON, json.loads(cached))
        try:
            value = to_json(await fetch(await self._shared_client()))
        except GivEnergyError as exc:
            raise upstream_error(exc) from exc
        if self._redis is not None:
            await self._redis.set(key, json.dumps(value), ex=self._ttl)
        return cast(JSON, value)


def _reader(info: Info) -> LiveReader:
    live = info.context.live
    if live is None:
        raise NoCredentialError("live data is not available: the tenant has no upstream credential",
                                code="UPSTREAM_NOT_CONFIGURED")
    return live


def _limit(value: int) -> int:
    if not 1 <= value <= MAX_ITEMS:
        raise InvalidInputError(f"limit must be between 1 and {MAX_ITEMS}")
    return value


@strawberry.type(description="Live data of an inverter, read from the GivEnergy cloud (interactive lane, "
                             f"cached {DEFAULT_TTL_SECONDS} s).")
class InverterLive:
    serial: str

    @strawberry.field(description="Latest system data (solar, grid, battery, inverter, consumption).")
    async def system_data(self, info: Info) -> JSON | None:
        serial = self.serial
        return await _reader(info).read("system_data", (serial,), lambda c: c.get_system_data(serial))

    @strawberry.field(description="Latest meter data (today and total energies).")
    async def meter_data(self, info: Info) -> JSON | None:
        serial = self.serial
        return await _reader(info).read("meter_data", (serial,), lambda c: c.get_meter_data(serial))

    @strawberry.field(description="Fault events between two times (newest pages first as upstream sends them).")
    async def events(self, info: Info, start: datetime | None = None, end: datetime | None = None,
                     cleared: bool | None = None, limit: int = 100) -> JSON | None:
        serial, count = self.serial, _limit(limit)
        return await _reader(info).read(
            "events", (serial, start, end, cleared, count),
            lambda c: take(c.iter_events(serial, start=start, end=end, cleared=cleared), count))

    @strawberry.field(description="Data points of one day (the inverter's local date).")
    async def data_points(self, info: Info, day: date, limit: int = 300) -> JSON | None:
        serial, count = self.serial, _limit(limit)
        return await _reader(info).read("data_points", (serial, day, count),
                                        lambda c: take(c.iter_data_points(serial, day), count))

    @strawberry.field(description="Energy flows between two dates; grouping 0 half-hourly, 1 daily, 2 monthly, "
                                  "3 yearly, 4 total.")
    async def energy_flows(self, info: Info, start: date, end: date, grouping: int = 1,
                           types: list[int] | None = None) -> JSON | None:
        if grouping not in range(5):
            raise InvalidInputError("grouping must be 0 (half-hourly) to 4 (total)")
        serial = self.serial
        return await _reader(info).read(
            "energy_flows", (serial, start, end, grouping, types),
            lambda c: c.get_energy_flows(serial, start, end, grouping=grouping, types=types))

    @strawberry.field(description="The inverter's settings catalogue (operator role).")
    async def settings(self, info: Info) -> JSON | None:
        info.context.access.require(Role.OPERATOR)
        serial = self.serial
        return await _reader(info).read("settings", (serial,), lambda c: c.get_settings(serial))

    @strawberry.field(description="The inverter's setting presets (operator role).")
    async def presets(self, info: Info) -> JSON | None:
        info.context.access.require(Role.OPERATOR)
        serial = self.serial
        return await _reader(info).read("presets", (serial,), lambda c: c.get_presets(serial))


def _whole_tenant(info: Info) -> None:
    # EMS units, EV chargers and smart devices are not in the mirror, so a subtree can't be checked for them.
    if info.context.access.restricted_account_id is not None:
        raise PermissionDeniedError("devices outside the mirror are not available to subtree-restricted keys")


@strawberry.type
class LiveQuery:
    @strawberry.field(description="Latest system data of a Plant EMS, live (whole-tenant keys only).")
    async def ems_system_data(self, info: Info, serial: str) -> JSON | None:
        _whole_tenant(info)
        return await _reader(info).read("ems", (serial,), lambda c: c.get_ems_system_data(serial))

    @strawberry.field(description="The tenant's EV chargers, live (whole-tenant keys only).")
    async def ev_chargers(self, info: Info, limit: int = 100) -> JSON | None:
        _whole_tenant(info)
        count = _limit(limit)
        return await _reader(info).read("ev_chargers", (count,), lambda c: take(c.iter_ev_chargers(), count))

    @strawberry.field(description="An EV charger by UUID, live (whole-tenant keys only).")
    async def ev_charger(self, info: Info, uuid: str) -> JSON | None:
        _whole_tenant(info)
        return await _reader(info).read("ev_charger", (uuid,), lambda c: c.get_ev_charger(uuid))

    @strawberry.field(description="A smart device by UUID, live (whole-tenant keys only; local keys withheld).")
    async def smart_device(self, info: Info, uuid: str) -> JSON | None:
        _whole_tenant(info)
        return await _reader(info).read("smart_device", (uuid,), lambda c: c.get_smart_device(uuid))

    @strawberry.field(description="Data points of a smart device, live (whole-tenant keys only).")
    async def smart_device_data(self, info: Info, uuid: str, limit: int = 100) -> JSON | None:
        _whole_tenant(info)
        count = _limit(limit)
        return await _reader(info).read("smart_device_data", (uuid, count),
                                        lambda c: take(c.iter_smart_device_data(uuid), count))


__all__ = ["ClientOpener", "CloseLater", "InverterLive", "LiveQuery", "LiveReader", "upstream_error"]
