"""The monitoring lane keeps its share of a credential's budget while a campaign saturates it (issues 12 and 13).

One credential, one simulator enforcing a low limit (20 requests per 2 s), one shared limiter. A campaign-lane
load sends requests as fast as the limiter grants them; meanwhile a monitoring cycle sweeps the fleet and reads
every inverter's events. The cycle must complete and find the injected fault, the campaign must keep
progressing, and the simulator must never answer 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
from sqlalchemy import select

from service.core.changes import Change
from service.core.tenancy import TenantId
from service.db.models import Alert
from service.db.uow import DeferredJob
from service.givenergy import GivEnergyClient, Lane, RateLimiter
from service.monitoring.sweep import Monitor, MonitorOptions
from service.runtime import Resources
from tests.monitoring.conftest import BASE_URL, quiet_simulator

LIMIT, WINDOW_SECONDS = 20, 2.0


async def test_a_cycle_completes_on_its_reserved_share_while_a_campaign_saturates_the_budget(
    resources: Resources, tenant_id: TenantId
) -> None:
    sim = quiet_simulator(10, rate_limits_enabled=True, rate_limit_per_window=LIMIT,
                          rate_limit_window_seconds=WINDOW_SECONDS)
    faulty = sim.fleet.devices_of(sim.fleet.named_accounts["company"])[0].serial
    sim.inject_fault([faulty], "Isolation fault", timedelta(hours=1))
    limiter = RateLimiter(resources.redis, namespace=f"{resources.settings.redis.namespace}:lanes-{uuid.uuid4().hex}")
    budget = limiter.credential("shared-token", requests_per_minute=LIMIT, window_seconds=WINDOW_SECONDS)
    transport = httpx.ASGITransport(app=sim.app)

    def client(lane: Lane) -> GivEnergyClient:
        return GivEnergyClient(sim.tokens["company"], base_url=BASE_URL, limiter=budget, lane=lane, transport=transport)

    campaign_answers = 0
    saturated = asyncio.Event()

    async def campaign() -> None:
        nonlocal campaign_answers
        async with client(Lane.CAMPAIGN) as campaign_client:
            while True:
                await campaign_client.get_page("/communication-device", page=1, page_size=1)
                campaign_answers += 1
                if campaign_answers >= LIMIT:
                    saturated.set()

    @contextlib.asynccontextmanager
    async def clients(_: TenantId) -> AsyncIterator[GivEnergyClient]:
        async with client(Lane.MONITORING) as monitoring_client:
            yield monitoring_client

    async def enqueue(jobs: list[DeferredJob]) -> None:
        return None

    async def publish(changes: list[Change]) -> None:
        return None

    load = asyncio.create_task(campaign())
    try:
        await asyncio.wait_for(saturated.wait(), timeout=60)  # the campaign holds the whole budget
        before = campaign_answers
        monitor = Monitor(resources.session_factory, clients, enqueue, MonitorOptions(clock=sim.now), publish=publish)
        report = await asyncio.wait_for(monitor.cycle(tenant_id), timeout=120)
        during = campaign_answers - before
    finally:
        load.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(load, timeout=30)
    assert load.cancelled()  # the load stopped when cancelled (it used to take slots for ever)
    assert report.errors == []  # no read refused: no 429 from the simulator, nothing given up
    assert report.page_requests + report.event_requests == 1 + report.inverters  # every read was granted
    assert report.plan is not None
    assert report.plan.budget == LIMIT * 30 * 0.3 * 5  # the lane's 30 % of 20 per 2 s, over a 5-minute sweep
    assert during > 0  # the campaign kept progressing on the rest of the budget
    async with resources.session_factory() as session:
        events = (await session.scalars(select(Alert.event).where(Alert.inverter_serial == faulty))).all()
    assert events == ["Isolation fault"]
