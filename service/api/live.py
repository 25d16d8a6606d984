"""REST live reads (``/api/v1``): the REST face of :class:`service.mirror.live.LiveService`, passed through to
the GivEnergy cloud in the interactive lane and cached for a short time.

An inverter's live reads are under ``/inverters/{serial}/live/``; the serial must be in the caller's mirror
scope (otherwise 404, before any upstream call). EMS units, EV chargers and smart devices are under ``/live/``
and need a whole-tenant key (403 for subtree keys). Bodies are the upstream payloads as JSON, secret fields
withheld. GivEnergy refusals are problem+json with ``code`` (``UPSTREAM_*``) and ``upstream_status``: 424 when
retrying cannot help (no working token, refused credential, no subscription, unknown device, rejected request),
503 when it can (outage, exhausted budget; ``Retry-After`` when known), 502 for anything else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Annotated, Any

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromQuery, Parameter

from service.api.common import SerialPath, named_handler, require_inverter, scope_of
from service.api.dependencies import provide_live
from service.api.openapi import UPSTREAM_STATUSES, problems
from service.authn import PrincipalDep
from service.core.principal import Principal
from service.db.uow import read_session
from service.mirror import queries as reads
from service.mirror.live import MAX_ITEMS, LiveService
from service.runtime import Resources

LiveDep = NamedDependency[LiveService]
ResourcesDep = NamedDependency[Resources]
ERRORS = problems(400, 401, 403, 404, 422, 429, *UPSTREAM_STATUSES)
Items = Annotated[int, Parameter(ge=1, le=MAX_ITEMS, description="At most this many items.")]
DevicePath = Annotated[str, Parameter(min_length=1, max_length=64, description="A device UUID or serial.")]


async def _inverter(principal: Principal, resources: Resources, serial: str) -> str:
    """The serial, once found in the caller's scoped mirror (404 otherwise): read on a short read session that
    is released before GivEnergy is asked."""
    async with read_session(resources.session_factory) as session:
        await require_inverter(reads.FleetReader(session, scope_of(principal)), serial)
    return serial


def _inverter_read(read: Callable[[LiveService, str], Awaitable[Any]], segment: str, doc: str) -> HTTPRouteHandler:
    """The handler of ``GET /inverters/{serial}/live/<segment>``: ``read`` of the inverter, once found in scope.

    The handler is named after ``read`` (its OpenAPI summary and operation id follow from that name).
    """

    async def handler(self: LiveController, principal: PrincipalDep, resources: ResourcesDep, live: LiveDep,
                      serial: SerialPath) -> Any:
        return await read(live, await _inverter(principal, resources, serial))

    return get(f"/inverters/{{serial:str}}/live/{segment}", responses=ERRORS)(
        named_handler(handler, read.__name__, doc))


class LiveController(Controller):
    """Live reads from the GivEnergy cloud (any role unless stated)."""

    path = "/api/v1"
    tags = ["live"]
    dependencies = {"live": Provide(provide_live)}
    security = [{"apiKey": []}]

    system_data = _inverter_read(
        LiveService.system_data, "system-data",
        "The inverter's latest system data (solar, grid, battery, inverter, consumption).")
    meter_data = _inverter_read(LiveService.meter_data, "meter-data",
                                "The inverter's latest meter data (today and total energies).")

    @get("/inverters/{serial:str}/live/events", responses=ERRORS)
    async def events(self, principal: PrincipalDep, resources: ResourcesDep, live: LiveDep, serial: SerialPath,
                     start: FromQuery[datetime | None] = None, end: FromQuery[datetime | None] = None,
                     cleared: Annotated[bool | None, Parameter(description="Only cleared (true) or "
                                                                           "active (false) events.")] = None,
                     limit: Items = 100) -> Any:
        """The inverter's fault events between two times."""
        checked = await _inverter(principal, resources, serial)
        return await live.events(checked, start=start, end=end, cleared=cleared, limit=limit)

    @get("/inverters/{serial:str}/live/data-points/{day:date}", responses=ERRORS)
    async def data_points(self, principal: PrincipalDep, resources: ResourcesDep, live: LiveDep, serial: SerialPath,
                          day: Annotated[date, Parameter(description="The inverter's local date.")],
                          limit: Items = 300) -> Any:
        """The inverter's data points of one day."""
        return await live.data_points(await _inverter(principal, resources, serial), day, limit=limit)

    @get("/inverters/{serial:str}/live/energy-flows", responses=ERRORS)
    async def energy_flows(
        self, principal: PrincipalDep, resources: ResourcesDep, live: LiveDep, serial: SerialPath,
        start: FromQuery[date], end: FromQuery[date],
        grouping: Annotated[int, Parameter(ge=0, le=4, description="0 half-hourly, 1 daily, 2 monthly, 3 yearly, "
                                                                   "4 total.")] = 1,
        types: Annotated[list[int] | None, Parameter(description="Flow types to include (repeat).")] = None,
    ) -> Any:
        """Energy flows of the inverter between two dates."""
        checked = await _inverter(principal, resources, serial)
        return await live.energy_flows(checked, start, end, grouping=grouping, types=types)

    settings = _inverter_read(LiveService.settings, "settings", "The inverter's settings catalogue (operator role).")
    presets = _inverter_read(LiveService.presets, "presets", "The inverter's setting presets (operator role).")

    @get("/live/ems/{serial:str}/system-data", responses=ERRORS)
    async def ems_system_data(self, live: LiveDep, serial: DevicePath) -> Any:
        """A Plant EMS's latest system data (whole-tenant keys only)."""
        return await live.ems_system_data(serial)

    @get("/live/ev-chargers", responses=ERRORS)
    async def ev_chargers(self, live: LiveDep, limit: Items = 100) -> Any:
        """The tenant's EV chargers (whole-tenant keys only)."""
        return await live.ev_chargers(limit=limit)

    @get("/live/ev-chargers/{uuid:str}", responses=ERRORS)
    async def ev_charger(self, live: LiveDep, uuid: DevicePath) -> Any:
        """An EV charger (whole-tenant keys only)."""
        return await live.ev_charger(uuid)

    @get("/live/smart-devices/{uuid:str}", responses=ERRORS)
    async def smart_device(self, live: LiveDep, uuid: DevicePath) -> Any:
        """A smart device, its local keys withheld (whole-tenant keys only)."""
        return await live.smart_device(uuid)

    @get("/live/smart-devices/{uuid:str}/data", responses=ERRORS)
    async def smart_device_data(self, live: LiveDep, uuid: DevicePath, limit: Items = 100) -> Any:
        """Data points of a smart device (whole-tenant keys only)."""
        return await live.smart_device_data(uuid, limit=limit)


__all__ = ["LiveController"]
