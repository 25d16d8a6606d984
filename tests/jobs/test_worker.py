"""Typed jobs on namespaced queues: checked at enqueue, enqueued after commit, run by real arq workers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import select
from typer.testing import CliRunner

from service.cli import app as cli_app
from service.core.tenancy import tenant_id_from
from service.db.models.mirror import SyncKind
from service.db.models.tenant import Tenant
from service.db.uow import defer_job, defer_notice, listen_locally
from service.jobs.enqueue import enqueue, unit_of_work
from service.jobs.typed import NoPayload, PayloadError, Queue
from service.mirror.jobs import SyncPayload, sweep_syncs, sync_tenant
from service.runtime import Resources
from service.settings import RedisSettings, Settings
from service.worker.build import WorkerGroup, build_worker, drain_queues, parse_queues
from service.worker.heartbeat import heartbeat
from tests.conftest import opened


async def test_heartbeat_job_runs_in_a_burst_worker_of_its_queue(resources: Resources) -> None:
    job = await enqueue(resources.redis, heartbeat.call(NoPayload()))
    assert job is not None
    assert job.job_id.startswith(f"{resources.redis.namespace}:system.heartbeat:")
    assert await resources.redis.zcard(resources.redis.queue(Queue.CONTROL)) == 1

    await drain_queues(resources, [Queue.CONTROL])

    result = await job.result(timeout=10)
    assert abs(result["database_time"] - datetime.now(UTC)) < timedelta(minutes=5)
    assert result["job_try"] == 1


async def test_a_bad_payload_raises_where_it_is_enqueued(resources: Resources) -> None:
    with pytest.raises(ValidationError):
        SyncPayload(tenant_id="not-a-uuid", kind=SyncKind.FULL)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        SyncPayload(tenant_id=uuid.uuid4(), spread=0)
    with pytest.raises(PayloadError, match="takes a SyncPayload"):
        sync_tenant.call(NoPayload())  # type: ignore[arg-type]
    forged = SyncPayload.model_construct(tenant_id="forged", kind="everything")  # skips validation
    with pytest.raises(PayloadError, match="invalid payload"):
        sync_tenant.call(forged)
    assert await resources.redis.zcard(resources.redis.queue(Queue.BULK)) == 0


async def test_a_failed_notice_publication_raises_nothing_and_the_jobs_are_still_enqueued(
        resources: Resources, clean_db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis refuses the publication of a committed unit of work's notices: the caller sees its commit succeed,
    this process's listeners still hear the notice, and the deferred job is still queued."""
    async def unreachable(*_: object) -> int:
        raise RedisConnectionError("injected: Redis unreachable at publish")

    monkeypatch.setattr(resources.redis, "publish", unreachable)
    heard: list[str] = []
    stop = listen_locally("test-notices", heard.append)
    key = f"notice-{uuid.uuid4()}"
    try:
        async with unit_of_work(resources.session_factory, resources.redis) as session:
            session.add(Tenant(slug="acme", name="Acme Solar"))
            defer_notice(session, "test-notices", "tenant:acme")
            defer_job(session, heartbeat.call(NoPayload(), key=key))
    finally:
        stop()
    assert heard == ["tenant:acme"]
    assert await resources.redis.exists(f"arq:job:{resources.redis.job_id('system.heartbeat', key)}") == 1
    await drain_queues(resources, [Queue.CONTROL])


async def test_deferred_job_is_enqueued_only_after_commit(resources: Resources, clean_db: None) -> None:
    committed, rolled_back = f"commit-{uuid.uuid4()}", f"rollback-{uuid.uuid4()}"
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        session.add(Tenant(slug="acme", name="Acme Solar"))
        defer_job(session, heartbeat.call(NoPayload(), key=committed))
        assert await resources.redis.exists(f"arq:job:{resources.redis.job_id('system.heartbeat', committed)}") == 0
    assert await resources.redis.exists(f"arq:job:{resources.redis.job_id('system.heartbeat', committed)}") == 1

    try:
        async with unit_of_work(resources.session_factory, resources.redis) as session:
            session.add(Tenant(slug="doomed", name="Never Committed"))
            defer_job(session, heartbeat.call(NoPayload(), key=rolled_back))
            raise RuntimeError("abort the unit of work")
    except RuntimeError:
        pass
    assert await resources.redis.exists(f"arq:job:{resources.redis.job_id('system.heartbeat', rolled_back)}") == 0
    async with resources.session_factory() as session:
        slugs = set((await session.execute(select(Tenant.slug))).scalars())
    assert slugs == {"acme"}
    await drain_queues(resources, [Queue.CONTROL])


def test_queues_are_parsed_and_unknown_ones_are_a_one_line_error_with_exit_2() -> None:
    assert parse_queues("control, monitor,control") == [Queue.CONTROL, Queue.MONITOR]

    result = CliRunner().invoke(cli_app, ["worker", "--queues", "control,bulkk"])

    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == ["givfleet worker: unknown queue bulkk: choose from control, monitor, bulk, notify"]


@pytest.fixture
async def other_deployment(test_settings: Settings) -> AsyncIterator[Resources]:
    """A second deployment on the same Redis and database under another namespace (staging cloned from
    production: same tenant ids)."""
    namespace = f"{test_settings.redis.namespace}-other"
    async with opened(test_settings.model_copy(update={"redis": RedisSettings(namespace=namespace)})) as other:
        yield other


async def test_two_namespaces_on_one_redis_never_block_each_other(
    resources: Resources, other_deployment: Resources
) -> None:
    tenant = tenant_id_from(uuid.uuid4())
    call = sync_tenant.call(SyncPayload(tenant_id=tenant, kind=SyncKind.FULL), key=f"{tenant}:full")

    mine = await enqueue(resources.redis, call)
    theirs = await enqueue(other_deployment.redis, call)  # same tenant id, same kind

    assert mine is not None
    assert theirs is not None, "the other deployment's job must not be blocked by ours"
    assert mine.job_id != theirs.job_id
    assert await resources.redis.zrange(resources.redis.queue(Queue.BULK), 0, -1) == [mine.job_id.encode()]
    assert await other_deployment.redis.zrange(other_deployment.redis.queue(Queue.BULK), 0, -1) == [
        theirs.job_id.encode()
    ]
    for deployment, job in ((resources, mine), (other_deployment, theirs)):
        await deployment.redis.delete(deployment.redis.queue(Queue.BULK), f"arq:job:{job.job_id}")
    # Cron ids carry the namespace too: both deployments' sweepers tick at the same second, and both run.
    tick = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)  # due: run at once
    queued = []
    for deployment in (resources, other_deployment):
        worker = build_worker(deployment, Queue.BULK)
        await _tick(worker, tick, sweep_syncs.name)
        queued.append(await deployment.redis.zrange(deployment.redis.queue(Queue.BULK), 0, -1))
    assert [len(ids) for ids in queued] == [2, 2]  # the schedule and the sweep, in each namespace
    assert all(job_id.decode().startswith(f"{d.redis.namespace}:") for d, ids in
               zip((resources, other_deployment), queued, strict=True) for job_id in ids)
    for deployment in (resources, other_deployment):
        await drain_queues(deployment, [Queue.BULK])


async def _tick(worker: object, at: datetime, name: str) -> None:
    """Make ``worker`` run its cron check for the minute of ``at`` (what its heartbeat loop does each poll)."""
    from arq.worker import Worker

    assert isinstance(worker, Worker)
    for cron_job in worker.cron_jobs:
        cron_job.next_run = at
    await worker.run_cron(at - timedelta(seconds=0.5), 0.5)


async def test_two_workers_one_cron_tick_one_job(resources: Resources, clean_db: None) -> None:
    tick = datetime.now(UTC).replace(second=0, microsecond=0)  # due already: the burst workers run it at once
    first, second = build_worker(resources, Queue.BULK), build_worker(resources, Queue.BULK)

    await _tick(first, tick, sweep_syncs.name)
    await _tick(second, tick, sweep_syncs.name)

    queued = [job_id.decode() for job_id in await resources.redis.zrange(resources.redis.queue(Queue.BULK), 0, -1)]
    namespace = resources.redis.namespace
    assert sorted(queued) == sorted(f"{namespace}:{name}:{int(tick.timestamp() * 1000)}"
                                    for name in ("mirror.schedule", "mirror.sweep"))
    await drain_queues(resources, [Queue.BULK])
    assert await resources.redis.zcard(resources.redis.queue(Queue.BULK)) == 0


def test_settings_with_urls_start_no_embedded_servers(tmp_path: object) -> None:
    from pathlib import Path

    from service.embedded import EmbeddedServices

    home = Path(str(tmp_path))
    settings = Settings(_env_file=None, home=home,  # type: ignore[call-arg]
                        database_url=SecretStr("postgresql://db.invalid:5432/givfleet"),
                        redis_url=SecretStr("redis://redis.invalid:6379/0"))
    embedded = EmbeddedServices(home)
    try:
        urls = embedded.resolve(settings)
    finally:
        embedded.close()

    assert "db.invalid" in urls.database_url
    assert urls.redis_url == "redis://redis.invalid:6379/0"
    assert not urls.embedded_database
    assert not urls.embedded_redis
    assert list(home.iterdir()) == []  # nothing started, nothing written


async def test_a_worker_group_runs_the_queues_that_have_jobs_and_stops_when_asked(resources: Resources) -> None:
    group = WorkerGroup(resources, [Queue.NOTIFY, Queue.CONTROL])
    job = await enqueue(resources.redis, heartbeat.call(NoPayload()))
    assert job is not None
    stop = asyncio.Event()

    running = asyncio.create_task(group.run(stop))
    result = await job.result(timeout=60)  # the control worker ran it
    stop.set()
    await asyncio.wait_for(running, timeout=60)

    assert [worker.queue_name for worker in group.workers] == [resources.redis.queue(Queue.NOTIFY),
                                                               resources.redis.queue(Queue.CONTROL)]
    assert result["job_try"] == 1


async def test_a_draining_burst_worker_starts_no_cron_job(resources: Resources, clean_db: None) -> None:
    """A drain (tests, one-off runs) that happens to cross a minute starts no scheduled sync or sweep."""
    tick = datetime.now(UTC).replace(second=0, microsecond=0)

    await _tick(build_worker(resources, Queue.BULK, burst=True), tick, sweep_syncs.name)

    assert await resources.redis.zcard(resources.redis.queue(Queue.BULK)) == 0
