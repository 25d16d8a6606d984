"""A monitoring cycle run while campaign-lane workers saturate the same credential (the lanes test and
``bench/monitoring.py --with-campaign``): how many requests each lane got during the overlap."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from service.core.signals import cancel_and_wait
from service.core.tenancy import TenantId
from service.givenergy import GivEnergyClient
from service.monitoring.sweep import CycleReport, Monitor


@dataclass(frozen=True)
class Overlap:
    """One cycle under campaign load.

    Attributes:
        report: The cycle's report.
        monitoring: Requests the cycle made (every one answered, or it is in ``report.errors``).
        campaign: Campaign requests answered while the cycle ran.
        load_stopped: Every campaign worker ended when cancelled.
    """

    report: CycleReport
    monitoring: int
    campaign: int
    load_stopped: bool

    @property
    def monitoring_share(self) -> float:
        """The monitoring lane's share of the requests answered during the overlap."""
        return self.monitoring / max(1, self.monitoring + self.campaign)


async def cycle_under_campaign_load(
    monitor: Monitor, tenant_id: TenantId, campaign_client: Callable[[], GivEnergyClient], *, workers: int,
    saturated_after: int, wait_seconds: float,
) -> Overlap:
    """Start ``workers`` campaign-lane loops sending requests as fast as the limiter grants them; once they have
    had ``saturated_after`` answers (the budget is theirs), run one monitoring cycle; stop the loops.

    Raises:
        TimeoutError: The load did not saturate, or the cycle did not end, within ``wait_seconds`` each.
    """
    answered = 0
    saturated = asyncio.Event()

    async def campaign() -> None:
        nonlocal answered
        async with campaign_client() as client:
            while True:
                await client.get_page("/communication-device", page=1, page_size=1)
                answered += 1
                if answered >= saturated_after:
                    saturated.set()

    loads = [asyncio.create_task(campaign(), name=f"campaign-load-{i}") for i in range(workers)]
    try:
        await asyncio.wait_for(saturated.wait(), timeout=wait_seconds)
        before = answered
        report = await asyncio.wait_for(monitor.cycle(tenant_id), timeout=wait_seconds)
        during = answered - before
    finally:
        await asyncio.gather(*(cancel_and_wait(load) for load in loads))
    return Overlap(report=report, monitoring=report.page_requests + report.event_requests, campaign=during,
                   load_stopped=all(load.cancelled() for load in loads))
