"""Fixtures for live (pass-through) reads, shared by the GraphQL and REST tests: the simulator in-process as
the GivEnergy cloud, and a tenant mirroring two of its inverters under different sub-contractors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import insert

from service.core.principal import Principal
from service.db.models import mirror as m
from service.runtime import Resources
from service.simulator import Simulator, SimulatorConfig
from service.tenants.crypto import load_key_ring
from service.tenants.service import CredentialService
from service.upstream import Route
from tests.conftest import http_client
from tests.gql.conftest import KeyedFleet, drop_tenant, keyed_fleet
from tests.gql.seed import NOW, customer_id, site_id


@pytest.fixture(scope="module")
def simulator() -> Simulator:
    return Simulator(SimulatorConfig.quiet(fleet_size=6, seed=11))


def inverters_with_settings(simulator: Simulator) -> list[str]:
    """The company's inverters that have a settings catalogue (not EMS units)."""
    return [serial for serial in simulator.truth.visible_serials(simulator.tokens["company"])
            if simulator.truth.settings(serial)]


async def add_inverter(resources: Resources, fleet: KeyedFleet, serial: str, customer: int) -> None:
    """Mirror a simulator inverter under one of the seeded customers."""
    async with resources.engine.begin() as connection:
        await connection.execute(insert(m.Inverter).values(
            id=uuid.uuid4(), tenant_id=fleet.mirror.tenant_id, serial=serial, account_upstream_id=customer_id(customer),
            site_upstream_id=site_id(customer), first_seen_at=NOW - timedelta(days=1), last_seen_at=NOW,
            changed_at=NOW, status="NORMAL", flags=[]))


async def add_credential(resources: Resources, fleet: KeyedFleet, token: str) -> None:
    async with resources.session_factory() as session, session.begin():
        await CredentialService(session, Principal.cli(fleet.mirror.tenant_id),
                                load_key_ring(resources.settings)).add(token, label="simulator")


def upstream_requests(simulator: Simulator) -> int:
    """Requests the simulator has answered so far."""
    return sum(counter.requests for counter in simulator.truth.counters().values())


@asynccontextmanager
async def lone_tenant(resources: Resources, simulator: Simulator, token: str | None = None, *, index: int = 0
                      ) -> AsyncIterator[tuple[KeyedFleet, str]]:
    """A tenant of its own mirroring one simulator inverter (the ``index``-th with settings), with a credential
    of ``token`` when given; dropped at the end."""
    fleet = await keyed_fleet(resources, inverters=1)
    try:
        serial = inverters_with_settings(simulator)[index]
        await add_inverter(resources, fleet, serial, 0)
        if token is not None:
            await add_credential(resources, fleet, token)
        yield fleet, serial
    finally:
        await drop_tenant(resources, fleet.mirror.tenant_id)


@pytest.fixture(scope="module")
async def live_fleet(resources: Resources, simulator: Simulator) -> AsyncIterator[tuple[KeyedFleet, list[str]]]:
    """A tenant whose credential is the simulator's company token, mirroring two of its inverters: one under
    sub-contractor 0 (customer 0), one under sub-contractor 1 (customer 1)."""
    fleet = await keyed_fleet(resources, inverters=3)
    serials = inverters_with_settings(simulator)[:2]
    await add_inverter(resources, fleet, serials[0], 0)
    await add_inverter(resources, fleet, serials[1], 1)
    await add_credential(resources, fleet, simulator.tokens["company"])
    yield fleet, serials
    await drop_tenant(resources, fleet.mirror.tenant_id)


@pytest.fixture
async def live_client(app: Litestar, resources: Resources, simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the app, whose upstream clients reach the simulator in-process."""
    async with http_client(app) as running:
        with resources.upstream.routed(Route(transport=httpx.ASGITransport(app=simulator.app))):
            yield running
