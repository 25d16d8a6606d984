"""The monitoring lane keeps its share of a credential's budget while a campaign saturates it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
from sqlalchemy import select

from service.core.tenancy import TenantId
from service.db.models import Alert
from service.db.uow import DeferredJob
from service.givenergy import GivEnergyClient, Lane, RateLimiter
from service.monitoring.sweep import Monitor, MonitorOptions
from service.runtime import Resources
from tests.monitoring.conftest import BASE_URL, quiet_simulator


async def test_a_cycle_completes_on_its_reserved_share_while_a_campaign_takes_the_rest(
    resources: Resources, tenant_id: TenantId
) -> None:
    sim = quiet_simulator(20)
    faulty = sim.fleet.devices_of(sim.fleet.named_accounts["company"])[0].serial
    sim.inject_fault([faulty], "Isolation fault", timedelta(hours=1))
    limiter = RateLimiter(resources.redis, namespace=f"{resources.settings.redis.namespace}:lanes-{uuid.uuid4().hex}")
    budget = limiter.credential("shared-token", requests_per_minute=20, window_seconds=2.0)  # 20 per 2 s

    campaign_grants = 0
    saturated = asyncio.Event()

    async def campaign() -> None:
        nonlocal campaign_grants
        while True:
            await budget.acquire(lane=Lane.CAMPAIGN)
            campaign_grants += 1
            if campaign_grants >= 20:
                saturated.set()

    @contextlib.asynccontextmanager
    async def clients(_: TenantId) -> AsyncIterator[GivEnergyClient]:
        async with GivEnergyClient(sim.tokens["company"], base_url=BASE_URL, limiter=budget, lane=Lane.MONITORING,
                                   transport=httpx.ASGITransport(app=sim.app)) as client:
            yield client

    async def enqueue(jobs: list[DeferredJob]) -> None:
        return None

    load = asyncio.create_task(campaign())
    try:
        await asyncio.wait_for(saturated.wait(), timeout=60)
        before = campaign_grants
        monitor = Monitor(resources.session_factory, clients, enqueue, MonitorOptions(clock=sim.now))
        report = await asyncio.wait_for(monitor.cycle(tenant_id), timeout=300)
        during = campaign_grants - before
        state = await budget.state()
    finally:
        load.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await load
    assert report.errors == []
    assert report.page_requests + report.event_requests == 1 + report.inverters  # every read was granted
    assert report.plan is not None
    assert report.plan.budget == 20 * 30 * 0.3 * 5  # the lane's 30 % of 20 per 2 s, over a 5-minute sweep
    assert during > 0  # the campaign kept the rest of the budget meanwhile
    assert state.used_by_lane.get(Lane.MONITORING, 0) > 0
    async with resources.session_factory() as session:
        events = (await session.scalars(select(Alert.event).where(Alert.inverter_serial == faulty))).all()
    assert events == ["Isolation fault"]
