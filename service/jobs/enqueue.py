"""Enqueue checked job calls on their namespaced queues; commit a unit of work, then publish its notices, enqueue
its jobs and publish the live changes it deferred."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

import structlog
from arq.constants import in_progress_key_prefix
from arq.jobs import Job
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.changefeed import publisher
from service.db.uow import DeferredJob, committed, deliver_locally

log = structlog.get_logger(__name__)

if TYPE_CHECKING:  # runtime -> upstream -> tenants -> enqueue: a real import would be a cycle
    from service.runtime import NamespacedRedis


async def enqueue(redis: NamespacedRedis, job: DeferredJob) -> Job | None:
    """Enqueue one checked call (see :meth:`service.jobs.typed.JobSpec.call`).

    Returns:
        The arq job, or ``None`` when a job with the same key is already queued or running (the call joins it).
    """
    job_id = redis.job_id(job.name, job.key)
    if job.replaces is not None:
        await redis.delete(in_progress_key_prefix + redis.job_id(job.name, job.replaces))
    return await redis.enqueue_job(job.name, job.payload, _job_id=job_id, _queue_name=redis.queue(job.queue),
                                   _defer_until=job.not_before)


async def enqueue_deferred(redis: NamespacedRedis, jobs: list[DeferredJob]) -> list[Job | None]:
    """Enqueue ``jobs`` in order (``None`` for each that joined a job already queued or running)."""
    return [await enqueue(redis, job) for job in jobs]


@asynccontextmanager
async def unit_of_work(
    session_factory: async_sessionmaker[AsyncSession], redis: NamespacedRedis
) -> AsyncIterator[AsyncSession]:
    """One transaction: commit on success (then enqueue deferred jobs, publish deferred notices and publish
    deferred changes; a failed publication is logged, not raised), roll back on any exception."""
    async with committed(session_factory, notify=partial(publish_notices, redis),
                         enqueue=partial(enqueue_deferred, redis), publish=publisher(redis)) as session:
        yield session


async def publish_notices(redis: NamespacedRedis, notices: list[tuple[str, str]]) -> None:
    """Hand committed (channel, message) notices to this process's listeners, then to the other processes. A
    Redis failure is logged, not raised: the transaction stands (the listeners that matter, the API-key caches,
    stop serving while they cannot hear Redis)."""
    for channel, message in notices:
        deliver_locally(channel, message)
    try:
        for channel, message in notices:
            await redis.publish(redis.channel(channel), message)
    except (RedisError, OSError) as exc:
        log.warning("notices.publish_failed", notices=len(notices), error=type(exc).__name__)
