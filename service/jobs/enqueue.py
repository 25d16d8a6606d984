"""Commit a unit of work, then enqueue what it deferred."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq.connections import ArqRedis
from arq.jobs import Job
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.db.uow import DeferredJob, take_deferred_jobs


async def enqueue_deferred(redis: ArqRedis, jobs: list[DeferredJob]) -> list[Job | None]:
    """Enqueue ``jobs`` in order; arq returns ``None`` for a job whose ``_job_id`` is already queued."""
    return [await redis.enqueue_job(job.name, *job.args, **job.kwargs) for job in jobs]


@asynccontextmanager
async def unit_of_work(
    session_factory: async_sessionmaker[AsyncSession], redis: ArqRedis
) -> AsyncIterator[AsyncSession]:
    """One transaction: commit on success (then enqueue deferred jobs), roll back on any exception."""
    async with session_factory() as session:
        async with session.begin():
            yield session
        await enqueue_deferred(redis, take_deferred_jobs(session))
