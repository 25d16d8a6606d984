"""Small builders of mirror records for unit tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.mirror.schemas import AccountRecord, BatteryRecord, DongleRecord, InverterRecord, MeterRecord, SiteRecord

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def account(upstream_id: int, parent: int | None = None, **changes: Any) -> AccountRecord:
    record = AccountRecord(
        upstream_id, f"user.{upstream_id}", "Ann", "Smith", "OWNER", f"u{upstream_id}@example.com", "1 Road",
        "AB1 2CD", "UNITED_KINGDOM", "0700", "GMT", "Europe/London", parent, 0,
    )  # fmt: skip
    return record._replace(**changes)


def site(upstream_id: int, username: str | None, **changes: Any) -> SiteRecord:
    record = SiteRecord(
        upstream_id, f"Site {upstream_id}", username, None, None, "UNITED_KINGDOM", "GMT", "Europe/London",
        52.0, -1.0, "SINGLE_PHASE", (),
    )  # fmt: skip
    return record._replace(**changes)


def dongle(serial: str, site_id: int | None, inverter: str, **changes: Any) -> DongleRecord:
    return DongleRecord(serial, "WIFI", "3.1.1", NOW, None, site_id, inverter)._replace(**changes)


def inverter(serial: str, dongle_serial: str, site_id: int | None, **changes: Any) -> InverterRecord:
    record = InverterRecord(
        serial, dongle_serial, None, site_id, "NORMAL", NOW, NOW, NOW, "GIV-HY5.0", "LITHIUM", 186.0, 51.2, 1.0,
        3600.0, 3600.0, "Standard", NOW, "449", "450", ("is-controllable",), True,
    )  # fmt: skip
    return record._replace(**changes)


def battery(inverter_serial: str, position: int, **changes: Any) -> BatteryRecord:
    return BatteryRecord(
        inverter_serial, position, position, f"BB{position}", "3005", 180.0, 186.0, 16, True, 51.2
    )._replace(**changes)


def meter(inverter_serial: str, address: int, **changes: Any) -> MeterRecord:
    return MeterRecord(inverter_serial, address, f"21{address}", "0000", 1500, 1000, 1000, 9600)._replace(**changes)
