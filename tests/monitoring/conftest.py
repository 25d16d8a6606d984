"""Fixtures of the monitoring tests: a tenant mirrored from an in-process simulator, and a monitor reading it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from pydantic import SecretStr

from service.core.changes import Change
from service.core.tenancy import TenantId
from service.db.models.mirror import SyncKind
from service.db.uow import DeferredJob
from service.givenergy import GivEnergyClient, Lane
from service.mirror.runner import SyncRunner
from service.mirror.upstream import UpstreamTarget
from service.monitoring.sweep import Monitor, MonitorOptions
from service.runtime import Resources
from service.simulator import Simulator
from tests.mirror.conftest import quiet_simulator, tenant_id  # noqa: F401 - the same tenant and calm fleet

BASE_URL = "http://simulator.test/v1"


async def mirror(resources: Resources, sim: Simulator, tenant: TenantId) -> None:
    """A full sync of the tenant from the simulator (sites and accounts for incidents and maintenance)."""
    target = UpstreamTarget(token=SecretStr(sim.tokens["company"]), base_url=BASE_URL,
                            transport=httpx.ASGITransport(app=sim.app))
    runner = SyncRunner(resources.engine, resources.session_factory, lambda *_: _target(target))
    await runner.run(tenant, SyncKind.FULL)


async def _target(target: UpstreamTarget) -> UpstreamTarget:
    return target


MonitorFactory = Callable[..., Monitor]


@pytest.fixture
def make_monitor(resources: Resources) -> MonitorFactory:
    """A monitor reading ``sim`` as the company token, on the simulator's clock; jobs it asks for are kept in
    ``monitor.asked`` (the tests run no worker here), the changes it announces in ``monitor.announced``."""

    def build(sim: Simulator, *, requests_per_minute: float = 90.0,
              transport: httpx.AsyncBaseTransport | None = None) -> Monitor:
        @contextlib.asynccontextmanager
        async def clients(_: TenantId) -> AsyncIterator[GivEnergyClient]:
            async with GivEnergyClient(sim.tokens["company"], base_url=BASE_URL, lane=Lane.MONITORING,
                                       transport=transport or httpx.ASGITransport(app=sim.app)) as client:
                yield client

        asked: list[DeferredJob] = []

        async def enqueue(jobs: list[DeferredJob]) -> None:
            asked.extend(jobs)

        announced: list[Change] = []

        async def publish(changes: list[Change]) -> None:
            announced.extend(changes)

        monitor = Monitor(resources.session_factory, clients, enqueue,
                          MonitorOptions(requests_per_minute=requests_per_minute, clock=sim.now), publish=publish)
        monitor.asked = asked  # type: ignore[attr-defined]
        monitor.announced = announced  # type: ignore[attr-defined]
        return monitor

    return build
