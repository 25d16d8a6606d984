"""Fixtures of the mirror tests: a tenant, an in-process simulator and a runner speaking to it."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.principal import Principal
from service.core.tenancy import TenantId, tenant_id_from
from service.db.models.tenant import Tenant
from service.givenergy import RateLimiter
from service.jobs.enqueue import unit_of_work
from service.mirror.runner import SyncOptions, SyncRunner
from service.runtime import Resources
from service.simulator import Simulator, SimulatorConfig
from service.simulator.server import server as simulator_server
from service.tenants.crypto import load_key_ring
from service.tenants.service import CredentialService
from service.upstream import UpstreamTarget


@pytest.fixture
async def tenant_id(resources: Resources, clean_db: None) -> TenantId:
    """A committed tenant (every table is emptied after the test)."""
    async with resources.session_factory() as session, session.begin():
        tenant = Tenant(slug=f"t-{uuid.uuid4().hex[:8]}", name="Mirror test")
        session.add(tenant)
        await session.flush()
        tenant_id = tenant_id_from(tenant.id)
    return tenant_id


def quiet_simulator(fleet_size: int = 40, **overrides: Any) -> Simulator:
    """A calm simulated fleet (frozen clock, no spontaneous behaviour, no rate limit unless asked)."""
    overrides.setdefault("rate_limits_enabled", False)
    return Simulator(SimulatorConfig.quiet(fleet_size=fleet_size, **overrides))


class FlakyTransport(httpx.AsyncBaseTransport):
    """Answers 429 (``Retry-After: 0``) to every ``every``-th request instead of passing it on; can also stop
    the caller dead after ``kill_after`` requests (a worker killed mid-sync)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, every: int = 0, kill_after: int | None = None) -> None:
        self.inner = inner
        self.every = every
        self.kill_after = kill_after
        self.count = 0
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        self.paths.append(request.url.path)
        if self.kill_after is not None and self.count > self.kill_after:
            raise asyncio.CancelledError("worker killed")
        if self.every and self.count % self.every == 0:
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"message": "Too Many Attempts."})
        return await self.inner.handle_async_request(request)


RunnerFactory = Callable[..., SyncRunner]


@pytest.fixture
def make_runner(resources: Resources) -> RunnerFactory:
    """Build a runner syncing from ``sim`` with token ``token`` (optionally through a shared rate limiter)."""

    def build(
        sim: Simulator,
        token: str = "company",  # noqa: S107 - a simulator token name
        *,
        limit: tuple[int, float] | None = None,
        options: SyncOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **runner_options: Any,
    ) -> SyncRunner:
        credential = f"test-{uuid.uuid4().hex[:8]}"
        limiter = None
        if limit is not None:
            limiter = RateLimiter(resources.redis, namespace=resources.settings.redis.namespace).credential(
                credential, requests_per_minute=limit[0], window_seconds=limit[1]
            )

        async def resolve(session: AsyncSession, tenant: TenantId) -> UpstreamTarget:
            found = (await session.execute(select(Tenant.id).where(Tenant.id == tenant))).scalar_one_or_none()
            assert found is not None
            return UpstreamTarget(
                token=SecretStr(sim.tokens[token]),
                base_url="http://simulator.test/v1",
                limiter=limiter,
                transport=transport or httpx.ASGITransport(app=sim.app),
            )

        return SyncRunner(
            resources.engine, resources.session_factory, resolve, options or SyncOptions(page_size=25), **runner_options
        )

    return build


@dataclass
class StatusGate:
    """An ASGI wrapper in front of the served simulator: records every v1 path, and injects faults into the
    site-status calls (after ``fail_after`` of them every one answers 503; after ``hold_after`` of them each waits
    for ``release``, so a test knows its worker is mid-statuses)."""

    app: Any
    paths: list[str] = field(default_factory=list)
    statuses: int = 0
    fail_after: int | None = None
    hold_after: int | None = None
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            self.paths.append(scope["path"])
            if scope["path"].endswith("/status"):
                self.statuses += 1
                if self.fail_after is not None and self.statuses > self.fail_after:
                    await send({"type": "http.response.start", "status": 503,
                                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
                    await send({"type": "http.response.body", "body": b'{"message": "Service Unavailable"}'})
                    return
                if self.hold_after is not None and self.statuses > self.hold_after:
                    self.reached.set()
                    await self.release.wait()
        await self.app(scope, receive, send)

    def since(self, mark: int) -> list[str]:
        """The paths requested after the first ``mark``."""
        return self.paths[mark:]


@dataclass
class GatedSimulator:
    """A quiet simulator served by uvicorn behind a :class:`StatusGate`."""

    sim: Simulator
    gate: StatusGate
    base_url: str


@pytest.fixture
async def gated_simulator() -> AsyncIterator[GatedSimulator]:
    """A quiet simulator (30 inverters) served on a socket bound before it starts (no waiting for start-up)."""
    sim, uv = simulator_server(SimulatorConfig.quiet(fleet_size=30, rate_limits_enabled=False))
    gate = StatusGate(uv.config.app)
    uv.config.app = gate
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    task = asyncio.create_task(uv.serve(sockets=[sock]))
    try:
        yield GatedSimulator(sim, gate, f"http://127.0.0.1:{port}/v1")
    finally:
        gate.release.set()
        uv.should_exit = True
        await task
        sock.close()


async def add_credential(resources: Resources, tenant_id: TenantId, token: str, base_url: str) -> None:
    """Store a GivEnergy API-token credential for the tenant (what a sync job resolves)."""
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        service = CredentialService(session, Principal.cli(tenant_id), load_key_ring(resources.settings))
        await service.add(token, label="simulator", base_url=base_url, requests_per_minute=6000)
