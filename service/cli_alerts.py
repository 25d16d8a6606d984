"""``givfleet alerts``: the fault monitor's alerts of a tenant, from the command line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from service.cli_access import TenantOption, console, principal_of_tenant, run_op, when
from service.core.limits import MAX_PAGE_SIZE
from service.core.tables import TextTable, print_table
from service.db.models.monitoring import Alert, AlertState, Severity
from service.db.uow import read_session
from service.monitoring.service import AlertFilter, AlertService
from service.runtime import Resources

alerts_app = typer.Typer(help="Fault alerts of a tenant.", no_args_is_help=True)


async def list_alerts_op(resources: Resources, slug: str, states: Sequence[AlertState] = (),
                         severities: Sequence[Severity] = (), limit: int = 100) -> tuple[list[Alert], int]:
    """The tenant's alerts (most recently seen first) and how many match in all."""
    async with read_session(resources.session_factory) as session:
        service = AlertService(session, await principal_of_tenant(session, slug))
        page = await service.alerts(AlertFilter(states=tuple(states), severities=tuple(severities)), limit, None)
        return page.items, page.total_count


@alerts_app.command("list")
def alerts_list(
    tenant: TenantOption,
    state: Annotated[list[AlertState] | None, typer.Option(help="Only alerts in this state (repeatable).")] = None,
    severity: Annotated[list[Severity] | None, typer.Option(help="Only this severity (repeatable).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_PAGE_SIZE, help="Most alerts shown.")] = 100,
) -> None:
    """List a tenant's alerts, most recently seen first."""
    alerts, total = run_op(lambda resources: list_alerts_op(resources, tenant, state or (),
                                                                        severity or (), limit))
    table = TextTable("severity", "state", "inverter", "site", "event", "first seen", "last seen", "count", "flaps",
                  "acknowledged by", "id")
    for alert in alerts:
        table.add_row(alert.severity.value, alert.state.value + (" (suppressed)" if alert.suppressed else ""),
                      alert.inverter_serial, str(alert.site_upstream_id or "-"), alert.event,
                      when(alert.first_seen_at), when(alert.last_seen_at), str(alert.occurrences), str(alert.flaps),
                      alert.acknowledged_by or "-", str(alert.id))
    print_table(console, table, whole=("inverter", "id"))
    console.print(f"{len(alerts)} of {total} alerts", highlight=False)
