"""Monitoring figures: a fleet's faults found within one cycle (status changes) or the round-robin bound.

Usage::

    .venv/bin/python bench/monitoring.py [--inverters 10000] [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
                                         [--redis-url redis://127.0.0.1:6379/0] [--with-campaign]

A fresh database (created, migrated, dropped) and a simulated fleet served in-process (ASGI transport, rate
limit off, frozen clock moved by the bench). The tenant's mirror is filled by a full sync; then the monitor
runs one cycle to learn the statuses, faults are injected into 1 % of the inverters (half change the
inverter's status, half leave it NORMAL), and cycles run on the simulator's clock, one sweep interval apart,
until every fault has an alert or the round-robin bound has passed. The monitor plans each cycle within the
monitoring lane's share of 300 requests/min (90/min, 30 %), so requests per cycle are what they would be in
production; only the waiting is skipped.

``--with-campaign`` then runs one more cycle through the shared rate limiter (300 requests per 2 s window: the
real budget with time compressed 30 times, a fresh limiter namespace) while eight campaign-lane workers take every
slot they are granted, and prints each lane's count and share of the requests answered during the overlap
(``lanes ...``; the same counting as ``tests/monitoring/test_lanes.py``).

The last line reads ``monitoring inverters=N requests_per_sweep=S detected=D injected=I duplicates=X
status_fault_cycles=C1 silent_fault_bound_min=M``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import httpx
from pydantic import SecretStr
from sqlalchemy import make_url, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mirror import _admin  # noqa: E402 - one way to create and drop a bench database
from service.changefeed import publisher  # noqa: E402
from service.core.tenancy import TenantId, tenant_id_from  # noqa: E402
from service.db import migrate  # noqa: E402
from service.db.models.mirror import SyncKind  # noqa: E402
from service.db.models.monitoring import Alert  # noqa: E402
from service.db.models.notifications import NotificationEvent, NotificationEventType  # noqa: E402
from service.db.models.tenant import Tenant  # noqa: E402
from service.db.uow import DeferredJob  # noqa: E402
from service.givenergy import DEFAULT_RESERVES, GivEnergyClient, Lane, RateLimiter  # noqa: E402
from service.mirror.runner import SyncOptions, SyncRunner  # noqa: E402
from service.mirror.upstream import UpstreamTarget  # noqa: E402
from service.monitoring.sweep import Monitor, MonitorOptions  # noqa: E402
from service.runtime import Resources  # noqa: E402
from service.settings import RedisSettings, Settings, asyncpg_url  # noqa: E402
from service.simulator import Simulator, SimulatorConfig  # noqa: E402
from tests.monitoring.overlap import cycle_under_campaign_load  # noqa: E402 - shared with the lanes test

BASE_URL = "http://simulator.bench/v1"
REQUESTS_PER_MINUTE = 300
INTERVAL = timedelta(minutes=5)
OVERLAP_WINDOW_SECONDS = 2.0
OVERLAP_WORKERS = 8
OVERLAP_TIMEOUT_SECONDS = 300.0


async def _alerts(resources: Resources) -> list[Alert]:
    async with resources.session_factory() as session:
        return list((await session.scalars(select(Alert))).all())


async def run(inverters: int, server_url: str, redis_url: str, *, with_campaign: bool) -> None:
    name = f"givfleet_bench_monitoring_{uuid.uuid4().hex[:8]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    url = make_url(asyncpg_url(server_url)).set(database=name).render_as_string(hide_password=False)
    try:
        await migrate.upgrade(url)
        settings = Settings(_env_file=None, database_url=SecretStr(url), redis_url=SecretStr(redis_url),  # type: ignore[call-arg]
                            redis=RedisSettings(namespace=f"bench-{uuid.uuid4().hex[:8]}"))
        resources = Resources.open(settings)
        try:
            await _bench(resources, inverters, with_campaign=with_campaign)
        finally:
            await resources.aclose()
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _bench(resources: Resources, size: int, *, with_campaign: bool) -> None:
    sim = Simulator(SimulatorConfig.quiet(fleet_size=size, rate_limits_enabled=False))
    transport = httpx.ASGITransport(app=sim.app)
    token = sim.tokens["distributor"]
    async with resources.session_factory() as session, session.begin():
        tenant = Tenant(slug="bench", name="Monitoring bench")
        session.add(tenant)
        await session.flush()
        tenant_id = tenant_id_from(tenant.id)

    clock = time.perf_counter()
    target = UpstreamTarget(token=SecretStr(token), base_url=BASE_URL, transport=transport)

    async def resolve(*_: object) -> UpstreamTarget:
        return target

    await SyncRunner(resources.engine, resources.session_factory, resolve,
                     SyncOptions(site_status=False)).run(tenant_id, SyncKind.FULL)
    print(f"mirror: full sync of {size} inverters in {time.perf_counter() - clock:.1f} s")

    @contextlib.asynccontextmanager
    async def clients(_: TenantId) -> AsyncIterator[GivEnergyClient]:
        async with GivEnergyClient(token, base_url=BASE_URL, lane=Lane.MONITORING, transport=transport) as client:
            yield client

    asked: list[DeferredJob] = []

    async def enqueue(jobs: list[DeferredJob]) -> None:
        asked.extend(jobs)

    share = REQUESTS_PER_MINUTE * DEFAULT_RESERVES[Lane.MONITORING]
    monitor = Monitor(resources.session_factory, clients, enqueue,
                      MonitorOptions(requests_per_minute=share, clock=sim.now),
                      publish=publisher(resources.redis))
    clock = time.perf_counter()
    baseline = await monitor.cycle(tenant_id)
    assert baseline.plan is not None
    print(f"cycle 0 (learn the statuses): {baseline.inverters} inverters, {baseline.page_requests} pages, "
          f"{baseline.event_requests} event reads, {time.perf_counter() - clock:.1f} s")
    print(baseline.plan.describe(baseline.inverters, share))

    devices = [device for device in sim.fleet.devices if device.status == "NORMAL" and not device.removed]
    step = max(1, len(devices) // max(1, size // 100))
    chosen = devices[::step][: size // 100]
    status_faults, silent_faults = chosen[: len(chosen) // 2], chosen[len(chosen) // 2 :]
    sim.inject_fault([d.serial for d in status_faults], "Isolation fault", timedelta(days=2))
    sim.inject_fault([d.serial for d in silent_faults], "Grid Over Frequency", timedelta(days=2))
    for device in silent_faults:
        sim.set_status(device.serial, "NORMAL")  # the fault does not show in the device list
    injected = {(d.serial, "Isolation fault") for d in status_faults} | {
        (d.serial, "Grid Over Frequency") for d in silent_faults}

    found_at: dict[tuple[str, str], int] = {}
    requests: list[int] = []
    cycle = 0
    bound = baseline.plan.bound_sweeps
    while len(found_at) < len(injected) and cycle < bound + 2:
        sim.clock.advance(INTERVAL)
        cycle += 1
        clock = time.perf_counter()
        report = await monitor.cycle(tenant_id)
        requests.append(report.page_requests + report.event_requests)
        for alert in await _alerts(resources):
            key = (alert.inverter_serial, alert.event)
            if key in injected:
                found_at.setdefault(key, cycle)
        print(f"cycle {cycle}: {report.page_requests} pages + {report.event_requests} event reads "
              f"({report.targeted} targeted), {report.raised} raised, detected {len(found_at)}/{len(injected)}, "
              f"{time.perf_counter() - clock:.1f} s")

    alerts = await _alerts(resources)
    per_key = Counter((a.inverter_serial, a.event) for a in alerts)
    async with resources.session_factory() as session:
        raised = Counter((await session.scalars(select(NotificationEvent.alert_id).where(
            NotificationEvent.type == NotificationEventType.ALERT_RAISED))).all())
    duplicates = sum(count - 1 for count in per_key.values()) + sum(count - 1 for count in raised.values())
    status_cycles = max((found_at.get((d.serial, "Isolation fault"), cycle + 1) for d in status_faults), default=0)
    silent_cycles = max((found_at.get((d.serial, "Grid Over Frequency"), cycle + 1) for d in silent_faults),
                        default=0)
    print(f"silent faults: all found within {silent_cycles} cycles ({silent_cycles * INTERVAL.total_seconds() / 60:g}"
          f" min); the plan's bound is {bound} cycles; false alerts: "
          f"{sum(1 for key in per_key if key not in injected)}")
    if with_campaign:
        sim.clock.advance(INTERVAL)
        print(await _overlap(resources, sim, token, tenant_id, share))
    print(f"monitoring inverters={baseline.inverters} requests_per_sweep={max(requests, default=0)} "
          f"detected={len(found_at)} injected={len(injected)} duplicates={duplicates} "
          f"status_fault_cycles={status_cycles} silent_fault_bound_min={baseline.plan.bound_minutes:g}")


async def _overlap(resources: Resources, sim: Simulator, token: str, tenant_id: TenantId, share: float) -> str:
    """One cycle through the shared limiter while a campaign-lane load saturates it; each lane's share."""
    limiter = RateLimiter(resources.redis, namespace=f"{resources.settings.redis.namespace}:overlap-{uuid.uuid4().hex}")
    budget = limiter.credential("bench-token", requests_per_minute=REQUESTS_PER_MINUTE,
                                window_seconds=OVERLAP_WINDOW_SECONDS)
    transport = httpx.ASGITransport(app=sim.app)

    def client(lane: Lane) -> GivEnergyClient:
        return GivEnergyClient(token, base_url=BASE_URL, limiter=budget, lane=lane, transport=transport)

    @contextlib.asynccontextmanager
    async def clients(_: TenantId) -> AsyncIterator[GivEnergyClient]:
        async with client(Lane.MONITORING) as monitoring_client:
            yield monitoring_client

    async def enqueue(jobs: list[DeferredJob]) -> None:
        return None

    monitor = Monitor(resources.session_factory, clients, enqueue,
                      MonitorOptions(requests_per_minute=share, clock=sim.now),
                      publish=publisher(resources.redis))
    clock = time.perf_counter()
    try:
        overlap = await cycle_under_campaign_load(monitor, tenant_id, partial(client, Lane.CAMPAIGN),
                                                  workers=OVERLAP_WORKERS, saturated_after=REQUESTS_PER_MINUTE,
                                                  wait_seconds=OVERLAP_TIMEOUT_SECONDS)
    finally:
        await budget.clear()
    monitoring, campaign = overlap.monitoring, overlap.campaign
    return (f"lanes overlap_s={time.perf_counter() - clock:.1f} budget={REQUESTS_PER_MINUTE}/"
            f"{OVERLAP_WINDOW_SECONDS:g}s campaign_workers={OVERLAP_WORKERS} monitoring={monitoring} "
            f"({100 * overlap.monitoring_share:.0f} %, reserve {100 * DEFAULT_RESERVES[Lane.MONITORING]:.0f} %) "
            f"campaign={campaign} ({100 - 100 * overlap.monitoring_share:.0f} %) "
            f"cycle_complete={'yes' if not overlap.report.errors else 'no'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--inverters", type=int, default=10_000)
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis-url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--with-campaign", action="store_true",
                        help="also run a cycle while a campaign-lane load saturates the shared limiter")
    args = parser.parse_args()
    asyncio.run(run(args.inverters, args.database_url, args.redis_url, with_campaign=args.with_campaign))


if __name__ == "__main__":
    main()
