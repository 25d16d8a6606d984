"""Units of work: jobs a transaction asks for are enqueued only once it has committed.

Services call :func:`defer_job` with the session they were given and a checked call of a declared job
(:meth:`service.jobs.typed.JobSpec.call`); the edge that owns the transaction (a REST request, a GraphQL
mutation, a job) commits, then hands the deferred jobs to arq. A rolled-back transaction enqueues nothing, so a
job never sees rows that were never written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

_DEFERRED_KEY = "givfleet.deferred_jobs"


@dataclass(frozen=True)
class DeferredJob:
    """A job to enqueue: its name (``"domain.verb"``), queue, validated payload (JSON data) and uniqueness key.

    Build it with :meth:`service.jobs.typed.JobSpec.call`, which checks the payload.
    """

    name: str
    queue: str
    payload: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    revive: bool = False


def defer_job(session: AsyncSession, job: DeferredJob) -> None:
    """Ask for ``job`` to be enqueued when ``session``'s transaction commits."""
    session.info.setdefault(_DEFERRED_KEY, []).append(job)


def take_deferred_jobs(session: AsyncSession) -> list[DeferredJob]:
    """Remove and return the jobs deferred on ``session``."""
    jobs: list[DeferredJob] = session.info.pop(_DEFERRED_KEY, [])
    return jobs
