"""A deterministic mirror for tests and benchmarks, bulk-inserted (10,000 inverters take seconds).

Shape: one installer account (depth 0) with ``subcontractors`` accounts below it (depth 1); each inverter has
its own customer account (depth 2, under sub-contractor ``i % subcontractors``), site, dongle, two battery
modules, one meter and one history row. Upstream ids and serials depend only on the index, so two tenants
seeded alike share every upstream key (as two installers could).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from service.core.tenancy import TenantId
from service.db.models import mirror as m
from service.db.models.tenant import Tenant

ROOT_ACCOUNT = 1000
STATUSES = ("NORMAL", "NORMAL", "NORMAL", "NORMAL", "WAITING", "ERROR", "LOST", "WARNING")
MODELS = ("GIV-HY5.0", "GIV-HY3.6", "GIV-AC3.0", "GIV-3HY-8.0")
ARM = ("449", "451", "453", "318")
DSP = ("180", "182", "183")
BATTERY_TYPES = ("LITHIUM", "LITHIUM", "LEAD_ACID", None)
NOW = datetime(2026, 11, 21, 6, 0, tzinfo=UTC)


def subcontractor_id(index: int) -> int:
    """Upstream id of sub-contractor ``index``."""
    return 2000 + index


def customer_id(index: int) -> int:
    """Upstream id of inverter ``index``'s customer account."""
    return 100_000 + index


def site_id(index: int) -> int:
    """Upstream id of inverter ``index``'s site."""
    return 500_000 + index


def inverter_serial(index: int) -> str:
    """Serial of inverter ``index``."""
    return f"CE{index:08d}"


@dataclass
class SeededMirror:
    """What was seeded, for assertions."""

    tenant_id: TenantId
    inverters: int
    subcontractors: int
    statuses: dict[str, str] = field(default_factory=dict)

    def serials_of_subcontractor(self, sub: int) -> list[str]:
        """Serials of the inverters under sub-contractor ``sub``."""
        return [inverter_serial(i) for i in range(self.inverters) if i % self.subcontractors == sub]


async def seed_mirror(connection: AsyncConnection, inverters: int, *, subcontractors: int = 3, seed: int = 7,
                      tenant_id: uuid.UUID | None = None, create_tenant: bool = True,
                      now: datetime = NOW) -> SeededMirror:
    """Insert a tenant (unless ``create_tenant`` is false) and its mirror on ``connection`` (the caller commits
    or rolls back)."""
    rng = random.Random(seed)
    tenant = TenantId(tenant_id or uuid.uuid4())
    if create_tenant:
        await connection.execute(insert(Tenant).values(id=tenant, slug=f"t-{tenant.hex[:12]}",
                                                       name="Seeded installer", timezone="Europe/London",
                                                       status="active"))
    seen = {"tenant_id": tenant, "first_seen_at": now - timedelta(days=30), "last_seen_at": now,
            "changed_at": now - timedelta(days=1), "removed_at": None}

    def row(**values: Any) -> dict[str, Any]:
        return {"id": uuid.uuid4(), **seen, **values}

    accounts = [row(upstream_id=ROOT_ACCOUNT, username="installer", role="INSTALLER", depth=0,
                    parent_upstream_id=None, postcode="SP1 1NE", first_name="Ina", surname="Staller",
                    email=None, address=None, country="GB", telephone_number=None, timezone="Europe/London",
                    standard_timezone=None)]
    accounts += [row(upstream_id=subcontractor_id(s), username=f"sub{s}", role="ENGINEER", depth=1,
                     parent_upstream_id=ROOT_ACCOUNT, postcode=None, first_name=f"Sub{s}", surname="Contractor",
                     email=None, address=None, country="GB", telephone_number=None, timezone="Europe/London",
                     standard_timezone=None)
                 for s in range(subcontractors)]
    sites, dongles, inverter_rows, batteries, meters, changes = [], [], [], [], [], []
    seeded = SeededMirror(tenant, inverters, subcontractors)
    for i in range(inverters):
        serial = inverter_serial(i)
        status = rng.choice(STATUSES)
        seeded.statuses[serial] = status
        accounts.append(row(upstream_id=customer_id(i), username=f"customer{i}", role="END_USER", depth=2,
                            parent_upstream_id=subcontractor_id(i % subcontractors), postcode=f"AB{i % 90 + 10} 1ZZ",
                            first_name="Cust", surname=f"Omer{i}", email=f"c{i}@example.com", address=None,
                            country="GB", telephone_number=None, timezone="Europe/London", standard_timezone=None))
        sites.append(row(upstream_id=site_id(i), name=f"Home {i}", account_username=f"customer{i}",
                         account_upstream_id=customer_id(i), date_created=None, country="GB",
                         timezone="Europe/London", tz_timezone="Europe/London", latitude=51.0, longitude=-1.0,
                         type="domestic", products=[], scheme_status=rng.choice(("vacant", "opted_in", None)),
                         scheme_status_checked_at=None))
        dongles.append(row(serial=f"WF{i:08d}", type="WIFI", firmware_version="3.2.4", commission_date=None,
                           account_upstream_id=customer_id(i), site_upstream_id=site_id(i), inverter_serial=serial))
        offline_hours = rng.choice((0.1, 0.1, 0.1, 2, 30, 200)) if status != "LOST" else 400
        inverter_rows.append(row(
            serial=serial, dongle_serial=f"WF{i:08d}", account_upstream_id=customer_id(i), site_upstream_id=site_id(i),
            status=status, status_since=now - timedelta(hours=5), last_online=now - timedelta(hours=offline_hours),
            last_updated=now - timedelta(hours=offline_hours), commission_date=now - timedelta(days=400),
            model=rng.choice(MODELS), battery_type=rng.choice(BATTERY_TYPES), battery_nominal_capacity=9.5,
            battery_nominal_voltage=51.2, battery_depth_of_discharge=0.9, max_charge_rate=3600.0,
            max_discharge_rate=3600.0, warranty_type="standard", warranty_expiry=None,
            firmware_arm=rng.choice(ARM), firmware_dsp=rng.choice(DSP), flags=["full-power-range"],
            is_controllable=True))
        for position in range(2):
            batteries.append(row(inverter_serial=serial, position=position, module_number=position + 1,
                                 serial=f"BG{i:08d}{position}", firmware_version="3014", capacity_full=180.0,
                                 capacity_design=186.0, cell_count=16, has_usb=False, nominal_voltage=51.2))
        meters.append(row(inverter_serial=serial, address=1, serial_number=f"EM{i:08d}", manufacturer_code="EAS",
                          type_code=1, hardware_version=1, software_version=2, baud_rate=9600))
        changes.append({"id": uuid.uuid4(), "tenant_id": tenant, "inverter_serial": serial,
                        "kind": m.InverterChangeKind.STATUS, "from_value": "NORMAL", "to_value": status,
                        "observed_at": now - timedelta(hours=5), "sync_run_id": None})
    for model, rows in ((m.FleetAccount, accounts), (m.Site, sites), (m.Dongle, dongles),
                        (m.Inverter, inverter_rows), (m.BatteryModule, batteries), (m.Meter, meters),
                        (m.InverterChange, changes)):
        for start in range(0, len(rows), 2000):
            await connection.execute(insert(model), rows[start:start + 2000])
    await connection.execute(insert(m.SyncRun), [
        {"id": uuid.uuid4(), "tenant_id": tenant, "kind": m.SyncKind.FULL, "state": m.SyncState.SUCCEEDED,
         "started_at": now - timedelta(hours=h), "heartbeat_at": now - timedelta(hours=h), "attempts": 1,
         "finished_at": now - timedelta(hours=h) + timedelta(minutes=3), "requests_used": 40, "rate_limited": 0,
         "server_errors": 0, "rows_inserted": inverters, "rows_updated": 0, "rows_removed": 0, "history_rows": 0,
         "site_status_included": False, "progress": {}, "error": None, "job_id": None, "credential_id": None,
         "planned_requests": 40, "planned_eta_seconds": 10.0}
        for h in (1, 25)])
    return seeded
