"""A job enqueued on Redis is run by a real arq worker that reaches the database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from service.db.models import Tenant
from service.db.uow import defer_job
from service.jobs.enqueue import unit_of_work
from service.jobs.worker import build_worker
from service.runtime import Resources


async def test_heartbeat_job_runs_in_a_burst_worker(resources: Resources) -> None:
    job = await resources.redis.enqueue_job("system.heartbeat")
    assert job is not None
    worker = build_worker(resources, burst=True, handle_signals=False)
    await worker.main()
    result = await job.result(timeout=10)
    assert abs(result["database_time"] - datetime.now(UTC)) < timedelta(minutes=5)
    assert result["job_try"] == 1


async def test_deferred_job_is_enqueued_only_after_commit(resources: Resources, clean_db: None) -> None:
    committed_id, rolled_back_id = f"commit-{uuid.uuid4()}", f"rollback-{uuid.uuid4()}"
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        session.add(Tenant(slug="acme", name="Acme Solar"))
        defer_job(session, "system.heartbeat", _job_id=committed_id)
        assert await resources.redis.exists(f"arq:job:{committed_id}") == 0
    assert await resources.redis.exists(f"arq:job:{committed_id}") == 1

    try:
        async with unit_of_work(resources.session_factory, resources.redis) as session:
            session.add(Tenant(slug="doomed", name="Never Committed"))
            defer_job(session, "system.heartbeat", _job_id=rolled_back_id)
            raise RuntimeError("abort the unit of work")
    except RuntimeError:
        pass
    assert await resources.redis.exists(f"arq:job:{rolled_back_id}") == 0
    async with resources.session_factory() as session:
        slugs = set((await session.execute(select(Tenant.slug))).scalars())
    assert slugs == {"acme"}
