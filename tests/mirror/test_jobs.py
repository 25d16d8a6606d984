"""The mirror's jobs in a real arq worker, against a simulator served over HTTP, with a stored credential."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import httpx
import pytest
from rich.console import Console
from sqlalchemy import select

from service.core.clock import utcnow
from service.core.tenancy import TenantId
from service.db.models.credential import CredentialHealth, UpstreamCredential
from service.db.models.mirror import SyncKind, SyncRun, SyncSchedule, SyncState
from service.jobs.enqueue import enqueue, unit_of_work
from service.jobs.typed import Queue
from service.mirror import cli_view
from service.mirror.jobs import SyncPayload, enqueue_due, request_sync, sync_job_id, sync_tenant
from service.mirror.runner import SyncRunner
from service.mirror.service import MirrorService
from service.runtime import Resources
from service.settings import Settings
from service.simulator import Simulator, SimulatorConfig
from service.upstream import Route
from service.worker.build import drain_queues
from tests.mirror.conftest import GatedSimulator, add_credential
from tests.mirror.truth import expected, mirrored


@pytest.fixture
def served(gated_simulator: GatedSimulator) -> tuple[Simulator, str]:
    """A quiet simulator served over HTTP: (simulator, base URL)."""
    return gated_simulator.sim, gated_simulator.base_url


async def _forget_jobs(resources: Resources, job_ids: list[str]) -> None:
    arq_ids = [f"{resources.redis.namespace}:{job_id}" for job_id in job_ids]
    await resources.redis.zrem(resources.redis.queue(Queue.BULK), *arq_ids)
    await resources.redis.delete(*(f"arq:job:{job_id}" for job_id in arq_ids))


async def test_sync_job_in_a_worker_mirrors_the_fleet_from_the_stored_credential(
    resources: Resources, tenant_id: TenantId, served: tuple[Simulator, str]
) -> None:
    sim, base_url = served
    await add_credential(resources, tenant_id, sim.tokens["company"], base_url)
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        job_id, _ = await request_sync(session, tenant_id, SyncKind.FULL)
    again = await enqueue(resources.redis, sync_tenant.call(SyncPayload(tenant_id=tenant_id), key=f"{tenant_id}:full"))
    assert again is None  # asking while one is queued joins it

    await drain_queues(resources, [Queue.BULK])

    async with resources.session_factory() as session:
        assert await mirrored(session, tenant_id) == expected(sim)
        run = (await session.execute(select(SyncRun))).scalar_one()
    assert run.state is SyncState.SUCCEEDED
    assert run.job_id == f"{resources.redis.namespace}:{job_id}"
    assert run.credential_id is not None
    assert run.requests_used == run.planned_requests
    assert run.rate_limited == 0


async def test_the_sync_command_shows_the_plan_and_the_counts(
    resources: Resources, test_settings: Settings, tenant_id: TenantId, served: tuple[Simulator, str]
) -> None:
    sim, base_url = served
    await add_credential(resources, tenant_id, sim.tokens["company"], base_url)
    out = io.StringIO()

    exit_code = await cli_view.sync_with_progress(
        test_settings, str(tenant_id), full=True, console=Console(file=out, width=100)
    )

    assert exit_code == 0
    text = out.getvalue()
    async with resources.session_factory() as session:
        run = (await session.execute(select(SyncRun))).scalar_one()
    assert f"{run.requests_used} / {run.planned_requests}" in text
    assert re.search(rf"run\s+.\s+{run.id}\s", text), "the run id comes out whole"
    assert re.search(rf"mirrored inverters\s+.\s+{len(sim.truth.visible_devices('company'))}\b", text)
    assert "rows inserted" in text


async def test_a_tenant_without_credential_gets_a_failed_run_with_the_reason(
    resources: Resources, tenant_id: TenantId
) -> None:
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        await request_sync(session, tenant_id, SyncKind.REFRESH)

    await drain_queues(resources, [Queue.BULK])

    async with resources.session_factory() as session:
        run = (await session.execute(select(SyncRun))).scalar_one()
    assert run.state is SyncState.FAILED
    assert run.error is not None
    assert "no usable GivEnergy API token" in run.error


async def test_schedules_ask_for_due_syncs_once(resources: Resources, tenant_id: TenantId) -> None:
    now = utcnow()
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        await MirrorService(session, tenant_id).set_schedule(
            full_interval=timedelta(hours=24), refresh_interval=timedelta(minutes=15)
        )

    async with unit_of_work(resources.session_factory, resources.redis) as session:
        first = await enqueue_due(session, now, resources.settings)
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        soon = await enqueue_due(session, now + timedelta(minutes=1), resources.settings)
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        later = await enqueue_due(session, now + timedelta(minutes=16), resources.settings)
        schedule = (await session.execute(select(SyncSchedule))).scalar_one()

    assert first == [sync_job_id(tenant_id, SyncKind.FULL)]
    assert soon == []
    # The refresh falls due while the full sync is still unfinished: it joins it; no job waits for it to end.
    assert later == [sync_job_id(tenant_id, SyncKind.FULL)]
    assert schedule.next_full_at == now + timedelta(hours=24)
    assert schedule.next_refresh_at == now + timedelta(minutes=31)
    namespace = resources.redis.namespace
    assert await resources.redis.exists(f"arq:job:{namespace}:{sync_job_id(tenant_id, SyncKind.FULL)}") == 1
    assert await resources.redis.exists(f"arq:job:{namespace}:{sync_job_id(tenant_id, SyncKind.REFRESH)}") == 0
    await _forget_jobs(resources, first)  # leave no job for other tests' workers


async def test_a_tenant_with_a_credential_and_no_schedule_is_scheduled_by_the_cron(
    resources: Resources, tenant_id: TenantId
) -> None:
    await add_credential(resources, tenant_id, "some-token", "http://127.0.0.1:9/v1")
    now = utcnow()

    async with unit_of_work(resources.session_factory, resources.redis) as session:
        asked = await enqueue_due(session, now, resources.settings)
        schedule = (await session.execute(select(SyncSchedule))).scalar_one()

    assert asked == [sync_job_id(tenant_id, SyncKind.FULL)]
    assert schedule.tenant_id == tenant_id
    assert schedule.next_refresh_at == now + timedelta(minutes=15)
    await _forget_jobs(resources, asked)


async def test_a_token_without_subscription_fails_the_sync_and_is_recorded_on_the_credential(
    resources: Resources, tenant_id: TenantId
) -> None:
    sim = Simulator(SimulatorConfig.quiet(fleet_size=10, no_subscription_status=402, rate_limits_enabled=False))
    await add_credential(resources, tenant_id, sim.tokens["no_subscription"], "http://simulator.test/v1")
    runner = SyncRunner(resources.engine, resources.session_factory, resources.upstream.sync_target)

    with resources.upstream.routed(Route(transport=httpx.ASGITransport(app=sim.app))):
        first = await runner.run(tenant_id, SyncKind.FULL)
        second = await runner.run(tenant_id, SyncKind.REFRESH)

    assert first.state is SyncState.FAILED
    assert first.error is not None
    assert "PaymentRequiredError" in first.error
    async with resources.session_factory() as session:
        credential = (await session.execute(select(UpstreamCredential))).scalar_one()
    assert credential.health is CredentialHealth.NO_SUBSCRIPTION
    assert second.state is SyncState.FAILED  # not retried against GivEnergy with a refused token
    assert second.error is not None
    assert "no usable GivEnergy API token" in second.error
