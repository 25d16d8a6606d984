"""The monitor's cadence: the once-a-minute scheduler and the cycles it asks for, on the simulator's clock.

Each tick of ``monitoring.schedule`` runs a few seconds after its second 15, the cycle it asks for starts a couple
of seconds later and lasts most of a minute (every request to the cloud takes seconds); what counts is at which
ticks the tenant is swept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest

from service.core.principal import Principal
from service.core.tenancy import TenantId
from service.jobs.context import JobContext
from service.jobs.enqueue import unit_of_work
from service.jobs.typed import NoPayload
from service.monitoring import jobs as monitoring_jobs
from service.monitoring.settings import SettingsChange, update_settings
from service.monitoring.sweep import Monitor
from service.runtime import Resources
from service.simulator import Simulator
from service.simulator.web import Receive, Scope, Send
from tests.mirror.conftest import add_credential, quiet_simulator
from tests.monitoring.conftest import BASE_URL, MonitorFactory, mirror

MINUTE = timedelta(minutes=1)
TICK_LATENESS = [timedelta(seconds=seconds) for seconds in (3, 1, 5, 2, 4)]
"""How late each scheduler tick runs after its second 15 (tick ``n`` is ``TICK_LATENESS[n % 5]`` late)."""
ENQUEUE_DELAY = timedelta(seconds=2)
REQUEST_TIME = timedelta(seconds=7)
"""What each request to the cloud takes: a cycle of the test's fleet (a page and five event reads) lasts ~40 s."""


class SlowCloud:
    """The simulator, each request moving its clock on by :data:`REQUEST_TIME` (a cycle that takes a while)."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.sim.clock.advance(REQUEST_TIME)
        await self.sim.app(scope, receive, send)


@dataclass
class Scheduled:
    """A monitored tenant, its scheduler ticks run on the simulator's clock."""

    resources: Resources
    sim: Simulator
    monitor: Monitor
    tenant_id: TenantId
    first_tick: datetime

    async def swept_at(self, ticks: Iterable[int]) -> list[int]:
        """Run the scheduler's ticks ``ticks`` (minutes after the first), each cycle it asks for right after it;
        the ticks at which the tenant was swept."""
        swept = []
        for tick in ticks:
            self.sim.clock.advance(self.first_tick + tick * MINUTE + TICK_LATENESS[tick % len(TICK_LATENESS)]
                                   - self.sim.now())
            if await monitoring_jobs.schedule_cycles.run(JobContext(resources=self.resources), NoPayload()):
                self.sim.clock.advance(ENQUEUE_DELAY)
                await self.monitor.cycle(self.tenant_id)
                swept.append(tick)
        return swept

    async def set_interval(self, seconds: int) -> None:
        """Change the sweep interval as ``PATCH /api/v1/monitoring/settings`` does."""
        async with unit_of_work(self.resources.session_factory, self.resources.redis) as session:
            await update_settings(session, Principal.cli(self.tenant_id),
                                  SettingsChange({"sweep_interval_seconds": seconds}))


@pytest.fixture
async def scheduled(resources: Resources, tenant_id: TenantId, make_monitor: MonitorFactory,
                    monkeypatch: pytest.MonkeyPatch) -> Scheduled:
    """A mirrored fleet of five inverters, its tenant's token stored, the scheduler on the simulator's clock."""
    sim = quiet_simulator(5)
    await mirror(resources, sim, tenant_id)
    await add_credential(resources, tenant_id, sim.tokens["company"], BASE_URL)
    monkeypatch.setattr(monitoring_jobs, "utcnow", sim.now)
    first_tick = sim.now().replace(second=15, microsecond=0) + MINUTE
    monitor = make_monitor(sim, transport=httpx.ASGITransport(app=SlowCloud(sim)))
    return Scheduled(resources, sim, monitor, tenant_id, first_tick)


@pytest.mark.parametrize(("interval", "swept"), [(60, list(range(12))), (300, [0, 5, 10])])
async def test_a_tenant_is_swept_every_interval_to_the_tick(
    scheduled: Scheduled, interval: int, swept: list[int]
) -> None:
    await scheduled.set_interval(interval)

    assert await scheduled.swept_at(range(12)) == swept


async def test_after_an_outage_sweeps_resume_one_interval_apart_without_making_up_the_missed_ones(
    scheduled: Scheduled,
) -> None:
    assert await scheduled.swept_at(range(7)) == [0, 5]

    assert await scheduled.swept_at(range(43, 55)) == [43, 48, 53]  # no tick ran for half an hour


async def test_a_shorter_interval_applies_from_the_last_sweep(scheduled: Scheduled) -> None:
    assert await scheduled.swept_at(range(3)) == [0]

    await scheduled.set_interval(60)

    assert await scheduled.swept_at(range(3, 9)) == [3, 4, 5, 6, 7, 8]
