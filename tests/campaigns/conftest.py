"""Fixtures of the campaign tests: a tenant whose mirror was synced from an in-process simulator, its stored
credential, and an engine on the simulator's clock."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from litestar import Litestar
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.campaigns.engine import CampaignEngine
from service.campaigns.schemas import CampaignSpec
from service.campaigns.service import CampaignService, prepare
from service.changefeed import publisher
from service.core.principal import Principal
from service.core.roles import Role
from service.core.tenancy import TenantId
from service.db.models.campaign import Campaign, CampaignTarget
from service.db.models.mirror import SyncKind
from service.jobs.enqueue import unit_of_work
from service.mirror.runner import SyncOptions, SyncRunner
from service.mirror.upstream import UpstreamTarget
from service.runtime import Resources
from service.simulator import Simulator, SimulatorConfig
from service.simulator.records import ControlCall
from service.tenants.crypto import load_key_ring
from service.tenants.service import CredentialService
from service.upstream import Route
from tests.conftest import http_client
from tests.tenants.factories import SIM_BASE_URL, committed_tenant, simulator_route


@dataclass
class World:
    """A tenant mirroring ``sim`` (company token), and how to act on its campaigns."""

    resources: Resources
    sim: Simulator
    tenant_id: TenantId
    admin_key_id: uuid.UUID

    def principal(self, role: Role = Role.OPERATOR, *, key_id: uuid.UUID | None = None,
                  restricted_account_id: str | None = None) -> Principal:
        return Principal(tenant_id=self.tenant_id, role=role, key_id=key_id or uuid.uuid4(),
                         actor=f"apikey:{role.value}", restricted_account_id=restricted_account_id)

    def engine(self, **options: Any) -> CampaignEngine:
        return CampaignEngine(self.resources.session_factory, self.resources.upstream, clock=self.sim.now,
                              publish=publisher(self.resources.redis), **options)

    async def create(self, spec: CampaignSpec | dict[str, Any], principal: Principal | None = None) -> uuid.UUID:
        spec = spec if isinstance(spec, CampaignSpec) else CampaignSpec.model_validate(spec)
        principal = principal or self.principal()
        preparation = await prepare(self.resources.session_factory, self.resources.upstream, principal, spec)
        async with unit_of_work(self.resources.session_factory, self.resources.redis) as session:
            campaign, _ = await CampaignService(session, principal).create(spec, preparation)
            return campaign.id

    async def act(self, action: str, campaign_id: uuid.UUID, principal: Principal | None = None) -> Campaign:
        async with unit_of_work(self.resources.session_factory, self.resources.redis) as session:
            service = CampaignService(session, principal or self.principal())
            campaign: Campaign = await getattr(service, action)(campaign_id)
            return campaign

    async def campaign(self, campaign_id: uuid.UUID) -> Campaign:
        async with self.resources.session_factory() as session:
            return (await session.execute(select(Campaign).where(Campaign.id == campaign_id))).scalar_one()

    async def targets(self, campaign_id: uuid.UUID) -> dict[str, CampaignTarget]:
        async with self.resources.session_factory() as session:
            rows = (await session.execute(select(CampaignTarget).where(CampaignTarget.campaign_id == campaign_id))
                    ).scalars().all()
        return {row.serial: row for row in rows}

    def writes(self, setting_id: int, since: int = 0) -> list[ControlCall]:
        """Multi-writes the simulator received for ``setting_id`` (its ground-truth control log)."""
        return [call for call in self.sim.control_log[since:]
                if call.action == "multi-write" and call.setting_id == setting_id]

    def serials_with(self, setting_id: int) -> list[str]:
        """The company's inverters that offer ``setting_id``."""
        return sorted(serial for serial in self.sim.truth.visible_serials(self.sim.tokens["company"])
                      if setting_id in self.sim.truth.settings(serial))


async def sync_mirror(resources: Resources, sim: Simulator, tenant_id: TenantId) -> None:
    """Mirror the company's fleet from ``sim`` (in-process)."""
    async def resolve(session: AsyncSession, tenant: TenantId) -> UpstreamTarget:
        return UpstreamTarget(token=SecretStr(sim.tokens["company"]), base_url=SIM_BASE_URL,
                              transport=httpx.ASGITransport(app=sim.app))

    runner = SyncRunner(resources.engine, resources.session_factory, resolve, SyncOptions(page_size=100))
    await runner.run(tenant_id, SyncKind.FULL)


async def make_world(resources: Resources, sim: Simulator) -> World:
    tenant = await committed_tenant(resources)
    async with resources.session_factory() as session, session.begin():
        await CredentialService(session, Principal.cli(tenant.tenant_id), load_key_ring(resources.settings)).add(
            sim.tokens["company"], label="simulator", base_url=SIM_BASE_URL, requests_per_minute=6000)
    await sync_mirror(resources, sim, tenant.tenant_id)
    return World(resources, sim, tenant.tenant_id, tenant.key_id)


@asynccontextmanager
async def world_of(resources: Resources, sim: Simulator) -> AsyncIterator[World]:
    """A world whose upstream requests go to ``sim`` in-process while the block runs."""
    with resources.upstream.routed(simulator_route(sim)):
        yield await make_world(resources, sim)


def quiet(fleet_size: int = 30, **overrides: Any) -> Simulator:
    """A calm simulated cloud (frozen clock) without rate limits unless asked."""
    overrides.setdefault("rate_limits_enabled", False)
    return Simulator(SimulatorConfig.quiet(fleet_size=fleet_size, seed=5, **overrides))


@pytest.fixture
async def world(resources: Resources, clean_db: None) -> AsyncIterator[World]:
    async with world_of(resources, quiet()) as made:
        yield made


@pytest.fixture
async def api(app: Litestar, world: World) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the app (REST and GraphQL), over ``world``'s tenant."""
    async with http_client(app) as client:
        yield client


@dataclass
class Fault:
    """Answer ``status`` to the ``nth`` request whose path ends with ``path``: ``before`` the simulator sees it
    (nothing happened), or ``after`` it answered (it happened, the answer is lost)."""

    path: str
    nth: int
    status: int
    after: bool = False


class FaultyTransport(httpx.AsyncBaseTransport):
    """The simulator in-process, with injected HTTP failures (5xx, 429) at chosen requests."""

    def __init__(self, sim: Simulator, faults: Sequence[Fault]) -> None:
        self.inner = httpx.ASGITransport(app=sim.app)
        self.faults = list(faults)
        self.seen: Counter[str] = Counter()
        self.injected: list[Fault] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        matching = [f for f in self.faults if path.endswith(f.path)]
        for fault in matching:
            self.seen[fault.path] += 1 if fault is matching[0] else 0
        for fault in matching:
            if self.seen[fault.path] == fault.nth:
                self.injected.append(fault)
                if fault.after:
                    await self.inner.handle_async_request(request)
                headers = {"Retry-After": "1"} if fault.status == 429 else {}
                return httpx.Response(fault.status, headers=headers, json={"message": "injected"})
        return await self.inner.handle_async_request(request)


def with_faults(world: World, *faults: Fault) -> FaultyTransport:
    """Make ``world``'s upstream requests go through a transport injecting ``faults`` (until the test ends)."""
    transport = FaultyTransport(world.sim, faults)
    world.resources.upstream.route = Route(transport=transport, base_url=SIM_BASE_URL)
    return transport


@dataclass
class WriteGate:
    """ASGI middleware in front of the simulator: holds the ``nth`` multi-control write (already fully received)
    until released, then lets the simulator apply it whether or not its client is still there."""

    app: Any
    nth: int
    seen: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    applied: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/multi-control/write"):
            await self.app(scope, receive, send)
            return
        self.seen += 1
        if self.seen != self.nth:
            await self.app(scope, receive, send)
            return
        messages = [await receive()]
        while messages[-1].get("more_body"):
            messages.append(await receive())
        self.arrived.set()
        await self.release.wait()
        replay = iter(messages)

        async def received() -> Any:
            return next(replay, {"type": "http.disconnect"})

        async def dropped(message: Any) -> None:
            return None  # the worker that asked is dead

        await self.app(scope, received, dropped)
        self.applied.set()


@dataclass
class Served:
    """A simulator served over HTTP (for real worker processes and the CLI), behind a :class:`WriteGate`."""

    sim: Simulator
    gate: WriteGate
    base_url: str


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """A quiet simulator served by uvicorn on a socket bound before it starts (set ``gate.nth`` to hold a write)."""
    sim = quiet(fleet_size=30)
    gate = WriteGate(sim.app, nth=0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(gate, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield Served(sim, gate, f"http://127.0.0.1:{sock.getsockname()[1]}/v1")
    finally:
        server.should_exit = True
        await task
        sock.close()
