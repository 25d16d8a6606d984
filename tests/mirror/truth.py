"""The simulator's ground truth and the mirror's content, in one comparable shape."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.tenancy import TenantId
from service.db.models.mirror import BatteryModule, Dongle, FleetAccount, Inverter, Meter, Site
from service.simulator import Simulator

Fleet = dict[str, dict[Any, Any]]


def expected(sim: Simulator, token: str = "company", *, statuses: bool = True) -> Fleet:  # noqa: S107
    """What the mirror of ``token``'s fleet must hold."""
    root = sim.truth.account_of_token(token)
    accounts = [root, *sim.truth.children(root.id)]
    depth = {root.id: 0}
    for account in accounts[1:]:
        depth[account.id] = depth[account.parent_id] + 1  # type: ignore[index]  # subtree is depth-first
    customers = set(sim.fleet.customers_of(root.id))
    devices = sim.truth.visible_devices(token)
    return {
        "accounts": {
            a.id: (a.username, a.role, a.parent_id if a.id != root.id else None, depth[a.id], a.standard_timezone)
            for a in accounts
        },
        "sites": {
            s.id: (s.name, s.account_id, s.tz_timezone, s.status if statuses else None)
            for s in sim.truth.sites()
            if s.account_id in customers
        },
        "dongles": {d.dongle_serial: (d.dongle_type, d.serial, d.site_id, d.owner_id) for d in devices},
        "inverters": {
            d.serial: (
                d.dongle_serial,
                d.status,
                d.model.name,
                str(d.arm),
                str(d.dsp),
                d.owner_id,
                d.site_id,
                tuple(sorted(d.flags)),
            )
            for d in devices
        },
        "batteries": {
            (d.serial, position): (b.module_number, b.serial, b.capacity_full, b.capacity_design)
            for d in devices
            for position, b in enumerate(d.batteries(), start=1)
        },
        "meters": {(d.serial, m.address): str(m.serial_number) for d in devices for m in d.meters()},
    }


async def mirrored(session: AsyncSession, tenant_id: TenantId) -> Fleet:
    """What the mirror holds for a tenant (rows not removed)."""

    async def rows(*columns: Any) -> list[Any]:
        table = columns[0].class_
        statement = select(*columns).where(table.tenant_id == tenant_id, table.removed_at.is_(None))
        return list(await session.execute(statement))

    return {
        "accounts": {
            r[0]: tuple(r[1:])
            for r in await rows(
                FleetAccount.upstream_id,
                FleetAccount.username,
                FleetAccount.role,
                FleetAccount.parent_upstream_id,
                FleetAccount.depth,
                FleetAccount.standard_timezone,
            )
        },
        "sites": {
            r[0]: tuple(r[1:])
            for r in await rows(
                Site.upstream_id, Site.name, Site.account_upstream_id, Site.tz_timezone, Site.scheme_status
            )
        },
        "dongles": {
            r[0]: tuple(r[1:])
            for r in await rows(
                Dongle.serial, Dongle.type, Dongle.inverter_serial, Dongle.site_upstream_id, Dongle.account_upstream_id
            )
        },
        "inverters": {
            r[0]: (*r[1:8], tuple(r[8]))
            for r in await rows(
                Inverter.serial,
                Inverter.dongle_serial,
                Inverter.status,
                Inverter.model,
                Inverter.firmware_arm,
                Inverter.firmware_dsp,
                Inverter.account_upstream_id,
                Inverter.site_upstream_id,
                Inverter.flags,
            )
        },
        "batteries": {
            (r[0], r[1]): tuple(r[2:])
            for r in await rows(
                BatteryModule.inverter_serial,
                BatteryModule.position,
                BatteryModule.module_number,
                BatteryModule.serial,
                BatteryModule.capacity_full,
                BatteryModule.capacity_design,
            )
        },
        "meters": {(r[0], r[1]): r[2] for r in await rows(Meter.inverter_serial, Meter.address, Meter.serial_number)},
    }
