"""A monitoring cycle killed with SIGKILL in a real worker process, then resumed: no duplicate anywhere."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import select

from service.core.principal import Principal
from service.core.tenancy import TenantId
from service.db.models.monitoring import Alert, AlertState
from service.db.models.notifications import NotificationEvent, NotificationEventType
from service.jobs.enqueue import enqueue_deferred, unit_of_work
from service.monitoring.jobs import build_monitor, cycle_call
from service.monitoring.rules import COMMUNICATION_LOST
from service.runtime import Resources
from service.simulator import Simulator, SimulatorConfig
from service.simulator.web import Receive, Scope, Send
from service.tenants.crypto import load_key_ring
from service.tenants.service import CredentialService

GIVFLEET = Path(sys.executable).with_name("givfleet")


class EventGate:
    """Passes requests to the simulator, but holds every events read after the first ``open_reads`` until
    released, and says when one is held (the moment to kill the worker)."""

    def __init__(self, sim: Simulator, open_reads: int) -> None:
        self.sim = sim
        self.open_reads = open_reads
        self.reads = 0
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope["path"]).endswith("/events"):
            self.reads += 1
            if self.reads > self.open_reads:
                self.held.set()
                await self.release.wait()
        await self.sim.app(scope, receive, send)


@pytest.fixture
async def gated() -> AsyncIterator[tuple[EventGate, str]]:
    """A simulator on the real clock, served over HTTP behind an :class:`EventGate`."""
    sim = Simulator(SimulatorConfig.quiet(fleet_size=20, rate_limits_enabled=False,
                                          start_time=datetime.now(UTC).replace(microsecond=0)))
    gate = EventGate(sim, open_reads=3)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(gate, log_level="warning", lifespan="off"))  # type: ignore[arg-type]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield gate, f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        gate.release.set()
        server.should_exit = True
        await task
        sock.close()


async def test_a_cycle_killed_mid_read_and_resumed_creates_no_duplicate(
    resources: Resources, tenant_id: TenantId, gated: tuple[EventGate, str]
) -> None:
    gate, base_url = gated
    sim = gate.sim
    visible = sorted(sim.fleet.devices_of(sim.fleet.named_accounts["company"]), key=lambda d: d.serial)
    faulty, lost = [d.serial for d in visible[:4]], visible[-1].serial
    sim.inject_fault(faulty, "PV Over Voltage", timedelta(hours=2))
    sim.set_status(lost, "LOST")
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        await CredentialService(session, Principal.cli(tenant_id), load_key_ring(resources.settings)).add(
            sim.tokens["company"], label="simulator", base_url=base_url, requests_per_minute=6000)
    await enqueue_deferred(resources.redis, [cycle_call(tenant_id)])

    settings = resources.settings
    env = {**os.environ, "GIVFLEET_DATABASE_URL": settings.configured_database_url() or "",
           "GIVFLEET_REDIS_URL": settings.configured_redis_url() or "",
           "GIVFLEET_REDIS__NAMESPACE": settings.redis.namespace, "GIVFLEET_HOME": str(settings.home),
           "GIVFLEET_SIMULATOR__ENABLED": "false"}
    worker = await asyncio.create_subprocess_exec(str(GIVFLEET), "worker", "--queues", "monitor", env=env,
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await asyncio.wait_for(gate.held.wait(), timeout=120)
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        await worker.wait()
    assert worker.returncode == -signal.SIGKILL
    async with resources.session_factory() as session:  # the sweep had committed its part before the reads
        before = (await session.scalars(select(Alert))).all()
    assert [(a.inverter_serial, a.event) for a in before] == [(lost, COMMUNICATION_LOST)]

    gate.open_reads = 10_000
    gate.release.set()
    await build_monitor(resources).cycle(tenant_id)  # the next cycle resumes what the killed one left
    await build_monitor(resources).cycle(tenant_id)  # and one more changes nothing

    async with resources.session_factory() as session:
        alerts = (await session.scalars(select(Alert))).all()
        raised = Counter((await session.scalars(select(NotificationEvent.alert_id).where(
            NotificationEvent.type == NotificationEventType.ALERT_RAISED))).all())
    assert sorted((a.inverter_serial, a.event, a.state) for a in alerts) == sorted(
        [(serial, "PV Over Voltage", AlertState.OPEN) for serial in faulty]
        + [(lost, COMMUNICATION_LOST, AlertState.OPEN)])
    assert all(count == 1 for count in raised.values())
    assert set(raised) == {a.id for a in alerts}
