"""The demo set-up of `givfleet up`: a served simulator, a demo tenant with an admin key, a first sync."""

from __future__ import annotations

import dataclasses
import socket

import pytest
from sqlalchemy import select

from service import demo
from service.core.tenancy import tenant_id_from
from service.db.models import Tenant
from service.db.models.credential import UpstreamCredential
from service.db.models.mirror import SyncKind, SyncSchedule
from service.launcher import QuietServer, start_server
from service.mirror.jobs import sync_job_id
from service.runtime import Resources
from service.settings import SimulatorSettings, SyncSettings
from service.tenants import CredentialService, Principal, TenantService, load_key_ring


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def demo_resources(resources: Resources) -> Resources:
    settings = resources.settings.model_copy(
        update={"simulator": SimulatorSettings(fleet_size=12, seed=3, port=_free_port()),
                "sync": SyncSettings(full_interval_seconds=7200, refresh_interval_seconds=600)}
    )
    return dataclasses.replace(resources, settings=settings)


async def test_demo_tenant_is_created_once_with_a_key_and_a_first_sync(
    demo_resources: Resources, clean_db: None
) -> None:
    assert await demo.simulator_wanted(demo_resources)
    simulator = demo.build_simulator(demo_resources)
    server, task = await start_server(QuietServer(simulator.config), "simulator")
    lines: list[str] = []
    try:
        await demo.prepare_demo_tenant(demo_resources, simulator, lines.append)
        await demo.prepare_demo_tenant(demo_resources, simulator, lines.append)
    finally:
        server.should_exit = True
        await task

    key_lines = [line for line in lines if line.startswith("Demo admin API key")]
    assert len(key_lines) == 1, "the admin key is printed on first use only"
    assert any("givfleet apikey create --tenant demo" in line for line in lines)
    async with demo_resources.session_factory() as session:
        tenant = (await session.execute(select(Tenant).where(Tenant.slug == "demo"))).scalar_one()
        credential = (await session.execute(select(UpstreamCredential))).scalar_one()
        schedule = (await session.execute(select(SyncSchedule))).scalar_one()
    assert credential.base_url == simulator.base_url
    assert schedule.tenant_id == tenant.id
    assert schedule.full_interval_seconds == demo_resources.settings.sync.full_interval_seconds
    assert schedule.next_full_at is not None
    job_id = f"{demo_resources.redis.namespace}:{sync_job_id(tenant_id_from(tenant.id), SyncKind.FULL)}"
    assert await demo_resources.redis.exists(f"arq:job:{job_id}") == 1
    await demo_resources.redis.delete(f"arq:job:{job_id}", demo_resources.redis.queue("bulk"))


async def test_a_real_credential_turns_the_simulator_off(demo_resources: Resources, clean_db: None) -> None:
    async with demo_resources.session_factory() as session, session.begin():
        tenant = await TenantService(session).create("acme", name="Acme Solar", actor="test")
        principal = Principal.cli(tenant_id_from(tenant.id), actor="test")
        await CredentialService(session, principal, load_key_ring(demo_resources.settings)).add(
            "a-real-givenergy-token", label="production"
        )
    assert not await demo.simulator_wanted(demo_resources)

    forced = demo_resources.settings.model_copy(update={"simulator": SimulatorSettings(enabled=True)})
    assert await demo.simulator_wanted(dataclasses.replace(demo_resources, settings=forced))
