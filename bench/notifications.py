"""Notification figures: 1,000 alert events through the outbox to a GivEnergy channel and a webhook.

Usage::

    .venv/bin/python bench/notifications.py [--events 1000] [--window-seconds 30]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres] [--redis-url redis://127.0.0.1:6379/0]

A fresh database (created, migrated, dropped), one tenant with a GivEnergy channel (the simulator in-process, its
clock running one simulated hour per ``--window-seconds`` real seconds, and its notification limit of 10 per
window enforced) and a webhook channel (a receiver over real HTTP on loopback). Events arrive in volleys of 20,
each volley relayed by a job; one real arq worker of the ``notify`` queue (this process) does all the work. The
figures: notifications GivEnergy accepted and the most of them in any simulated hour (from the simulator's own
record), webhooks delivered, events missing from either channel, and the time from the first event until every
delivery was done.

The last line reads ``notifications events=N givenergy_sent=G max_per_hour=H webhook_delivered=W lost=L
drain_s=T``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
from pydantic import SecretStr
from sqlalchemy import func, make_url, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mirror import _admin  # noqa: E402 - one way to create and drop a bench database
from service.core.principal import Principal  # noqa: E402
from service.core.tenancy import TenantId, tenant_id_from  # noqa: E402
from service.db import migrate  # noqa: E402
from service.db.models.monitoring import Severity  # noqa: E402
from service.db.models.notifications import (  # noqa: E402
    ChannelKind,
    DeliveryState,
    NotificationDelivery,
    NotificationEvent,
    NotificationEventType,
)
from service.db.models.tenant import Tenant  # noqa: E402
from service.jobs.enqueue import enqueue_deferred, unit_of_work  # noqa: E402
from service.jobs.typed import Queue  # noqa: E402
from service.notifications.delivery import Ask  # noqa: E402
from service.notifications.jobs import call_of  # noqa: E402
from service.notifications.outbox import record_event  # noqa: E402
from service.notifications.service import ChannelSpec, NotificationService  # noqa: E402
from service.runtime import Resources  # noqa: E402
from service.settings import GivEnergySettings, NotificationSettings, RedisSettings, Settings, asyncpg_url  # noqa: E402
from service.simulator import Simulator, SimulatorConfig  # noqa: E402
from service.tenants.crypto import load_key_ring  # noqa: E402
from service.tenants.service import CredentialService  # noqa: E402
from service.upstream import Route  # noqa: E402
from service.worker.build import build_worker  # noqa: E402
from tests.notifications.conftest import served_receiver  # noqa: E402 - the tests' webhook receiver

VOLLEY = 20


def most_in_an_hour(times: list[object]) -> int:
    """The largest number of simulator timestamps inside any 60 simulated minutes."""
    ordered = sorted(times)  # type: ignore[type-var]
    hour = timedelta(hours=1)
    return max((sum(1 for t in ordered[i:] if t - start < hour)  # type: ignore[operator]
                for i, start in enumerate(ordered)), default=0)


async def run(events: int, window: float, server_url: str, redis_url: str) -> None:
    name = f"givfleet_bench_notifications_{uuid.uuid4().hex[:8]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    url = make_url(asyncpg_url(server_url)).set(database=name).render_as_string(hide_password=False)
    try:
        await migrate.upgrade(url)
        settings = Settings(
            _env_file=None, database_url=SecretStr(url), redis_url=SecretStr(redis_url),  # type: ignore[call-arg]
            redis=RedisSettings(namespace=f"bench-{uuid.uuid4().hex[:8]}"),
            givenergy=GivEnergySettings(notification_window_seconds=window),
            notifications=NotificationSettings(webhook_allowed_networks=["127.0.0.0/8"],
                                               givenergy_max_wait_seconds=0.0))
        resources = Resources.open(settings)
        try:
            await _bench(resources, events, window)
        finally:
            await resources.aclose()
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _tenant(resources: Resources, sim: Simulator, webhook_url: str) -> TenantId:
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        tenant = Tenant(slug=f"bench-{uuid.uuid4().hex[:6]}", name="Bench")
        session.add(tenant)
        await session.flush()
        tenant_id = tenant_id_from(tenant.id)
        principal = Principal.cli(tenant_id)
        await CredentialService(session, principal, load_key_ring(resources.settings)).add(
            sim.tokens["company"], base_url="http://simulator.bench/v1")
        service = NotificationService(session, principal, load_key_ring(resources.settings),
                                      resources.settings.notifications)
        for spec in (ChannelSpec(ChannelKind.GIVENERGY, "installer app"),
                     ChannelSpec(ChannelKind.WEBHOOK, "ops", url=webhook_url)):
            created = await service.create_channel(spec)
            await service.add_rule(created.channel.id, [], None)
    return tenant_id


async def _drained(resources: Resources, done: asyncio.Event) -> None:
    """Set ``done`` once every event is routed and every delivery delivered."""
    while not done.is_set():
        async with resources.session_factory() as session:
            unrouted = await session.scalar(select(func.count()).select_from(NotificationEvent).where(
                NotificationEvent.processed_at.is_(None)))
            waiting = await session.scalar(select(func.count()).select_from(NotificationDelivery).where(
                NotificationDelivery.state != DeliveryState.DELIVERED))
        if not unrouted and not waiting:
            done.set()
        else:
            await asyncio.sleep(0.2)


async def _bench(resources: Resources, events: int, window: float) -> None:
    sim = Simulator(SimulatorConfig.quiet(fleet_size=20, rate_limits_enabled=True, clock_speed=3600.0 / window,
                                          notification_window_seconds=window))
    worker = build_worker(resources, Queue.NOTIFY)
    with resources.upstream.routed(Route(transport=httpx.ASGITransport(app=sim.app))):
        async with served_receiver() as receiver:
            tenant_id = await _tenant(resources, sim, receiver.url)
            working = asyncio.create_task(worker.main())
            started = time.perf_counter()
            summaries: list[str] = []
            try:
                for volley in range(0, events, VOLLEY):
                    async with unit_of_work(resources.session_factory, resources.redis) as session:
                        for index in range(volley, min(events, volley + VOLLEY)):
                            summary = f"{('PV Over Voltage', 'Battery Low')[index % 2]} on inverter BX{index:04d}Y"
                            summaries.append(summary)
                            await record_event(session, tenant_id, NotificationEventType.ALERT_RAISED,
                                               f"alert:{uuid.uuid4()}:raised", summary, severity=Severity.MAJOR,
                                               inverter_serial=f"BX{index:04d}Y", site_upstream_id=index % 37)
                    await enqueue_deferred(resources.redis, [call_of(Ask("relay", tenant_id))])
                done = asyncio.Event()
                await _drained(resources, done)
                drain = time.perf_counter() - started
            finally:
                working.cancel()
                with contextlib.suppress(asyncio.CancelledError):  # jobs still running (a last flush) are cancelled
                    await worker.close()
    sent = sim.truth.notifications()
    bodies = [note["body"] for note in sent]
    hooked = {json.loads(request.body)["data"]["summary"] for request in receiver.received}
    lost = sum(1 for s in summaries if s not in hooked or not any(s in body for body in bodies))
    print(f"givenergy: {len(sent)} notifications, {sim.truth.counters()['company'].throttled} answered 429; "
          f"webhook: {len(receiver.received)} requests for {len(hooked)} events")
    print(f"notifications events={events} givenergy_sent={len(sent)} "
          f"max_per_hour={most_in_an_hour([note['time'] for note in sent])} webhook_delivered={len(hooked)} "
          f"lost={lost} drain_s={drain:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--window-seconds", type=float, default=30.0,
                        help="Real seconds per simulated hour (the notification window).")
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis-url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    asyncio.run(run(args.events, args.window_seconds, args.database_url, args.redis_url))


if __name__ == "__main__":
    main()
