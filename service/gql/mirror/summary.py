# mypy: disable-error-code="untyped-decorator"
"""The ``fleetSummary`` type."""

from __future__ import annotations

import strawberry

from service.db.models.monitoring import AlertState
from service.gql.context import Info
from service.gql.monitoring.types import SeverityCount
from service.mirror import queries as q
from service.monitoring.service import AlertFilter, AlertService


@strawberry.type(description="How many inverters have a value (null: unknown).")
class Bucket:
    value: str | None
    count: int


@strawberry.type(description="Inverters offline for more than a number of hours.")
class OfflineCount:
    hours: int
    count: int


@strawberry.type(description="Counts over the inverters matching a filter, computed in one SQL statement.")
class FleetSummary:
    total: int
    by_status: list[Bucket]
    by_model: list[Bucket]
    by_firmware_arm: list[Bucket]
    by_firmware_dsp: list[Bucket]
    by_battery_type: list[Bucket]
    offline: list[OfflineCount]

    @classmethod
    def from_summary(cls, summary: q.FleetSummary) -> FleetSummary:
        def buckets(values: list[q.Breakdown]) -> list[Bucket]:
            return [Bucket(value=b.value, count=b.count) for b in values]

        return cls(total=summary.total, by_status=buckets(summary.by_status), by_model=buckets(summary.by_model),
                   by_firmware_arm=buckets(summary.by_firmware_arm),
                   by_firmware_dsp=buckets(summary.by_firmware_dsp),
                   by_battery_type=buckets(summary.by_battery_type),
                   offline=[OfflineCount(hours=h, count=c) for h, c in summary.offline.items()])

    @strawberry.field(description="Alerts not cleared (open or acknowledged) per severity, over every inverter the "
                                  "key may see (the inverter filter does not apply).")
    async def open_alerts_by_severity(self, info: Info) -> list[SeverityCount]:
        where = AlertFilter(states=(AlertState.OPEN, AlertState.ACKNOWLEDGED))
        async with info.context.session_factory() as session:
            counts = await AlertService(session, info.context.principal).alert_counts(where)
        return [SeverityCount(severity=severity, count=count) for severity, count in counts.items()]
