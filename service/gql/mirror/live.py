# mypy: disable-error-code="untyped-decorator"
# (strawberry.field(description=...) is typed as returning Any)
"""Live fields: the GraphQL face of :class:`service.mirror.live.LiveService` (reads passed through to the
GivEnergy cloud in the interactive lane, cached briefly; refusals are errors with an ``UPSTREAM_*`` code).

Results are JSON, since their shapes are the cloud's, not ours.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from service.gql.context import Info
from service.mirror.live import DEFAULT_TTL_SECONDS, LiveService


def _live(info: Info) -> LiveService:
    context = info.context
    return context.live if context.live is not None else LiveService(context.principal, None)


def _read(read: Callable[[LiveService, str], Awaitable[Any]], description: str) -> Any:
    """The field of :class:`InverterLive` that answers ``read`` of its inverter (a read that takes only the
    serial)."""

    async def resolve(self: InverterLive, info: Info) -> JSON | None:
        return cast(JSON, await read(_live(info), self.serial))

    return strawberry.field(resolver=resolve, description=description)


@strawberry.type(description="Live data of an inverter, read from the GivEnergy cloud (interactive lane, "
                             f"cached {DEFAULT_TTL_SECONDS} s).")
class InverterLive:
    # Only built from an inverter resolved through the caller's scope, so the serial is one it may see.
    serial: str

    system_data = _read(LiveService.system_data, "Latest system data (solar, grid, battery, inverter, consumption).")
    meter_data = _read(LiveService.meter_data, "Latest meter data (today and total energies).")

    @strawberry.field(description="Fault events between two times (newest pages first as upstream sends them).")
    async def events(self, info: Info, start: datetime | None = None, end: datetime | None = None,
                     cleared: bool | None = None, limit: int = 100) -> JSON | None:
        return cast(JSON, await _live(info).events(self.serial, start=start, end=end, cleared=cleared, limit=limit))

    @strawberry.field(description="Data points of one day (the inverter's local date).")
    async def data_points(self, info: Info, day: date, limit: int = 300) -> JSON | None:
        return cast(JSON, await _live(info).data_points(self.serial, day, limit=limit))

    @strawberry.field(description="Energy flows between two dates; grouping 0 half-hourly, 1 daily, 2 monthly, "
                                  "3 yearly, 4 total.")
    async def energy_flows(self, info: Info, start: date, end: date, grouping: int = 1,
                           types: list[int] | None = None) -> JSON | None:
        return cast(JSON, await _live(info).energy_flows(self.serial, start, end, grouping=grouping, types=types))

    settings = _read(LiveService.settings, "The inverter's settings catalogue (operator role).")
    presets = _read(LiveService.presets, "The inverter's setting presets (operator role).")


@strawberry.type
class LiveQuery:
    @strawberry.field(description="Latest system data of a Plant EMS, live (whole-tenant keys only).")
    async def ems_system_data(self, info: Info, serial: str) -> JSON | None:
        return cast(JSON, await _live(info).ems_system_data(serial))

    @strawberry.field(description="The tenant's EV chargers, live (whole-tenant keys only).")
    async def ev_chargers(self, info: Info, limit: int = 100) -> JSON | None:
        return cast(JSON, await _live(info).ev_chargers(limit=limit))

    @strawberry.field(description="An EV charger by UUID, live (whole-tenant keys only).")
    async def ev_charger(self, info: Info, uuid: str) -> JSON | None:
        return cast(JSON, await _live(info).ev_charger(uuid))

    @strawberry.field(description="A smart device by UUID, live (whole-tenant keys only; local keys withheld).")
    async def smart_device(self, info: Info, uuid: str) -> JSON | None:
        return cast(JSON, await _live(info).smart_device(uuid))

    @strawberry.field(description="Data points of a smart device, live (whole-tenant keys only).")
    async def smart_device_data(self, info: Info, uuid: str, limit: int = 100) -> JSON | None:
        return cast(JSON, await _live(info).smart_device_data(uuid, limit=limit))


__all__ = ["InverterLive", "LiveQuery"]
