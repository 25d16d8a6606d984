"""Units of work: jobs a transaction asks for are enqueued only once it has committed.

Services call :func:`defer_job` with the session they were given; the edge that owns the transaction (a REST
request, a GraphQL mutation, a job) commits, then hands the deferred jobs to arq. A rolled-back transaction
enqueues nothing, so a job never sees rows that were never written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

_DEFERRED_KEY = "givfleet.deferred_jobs"


@dataclass(frozen=True)
class DeferredJob:
    """A job to enqueue after commit: its registered name (``"domain.verb"``) and its arguments (ids)."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def defer_job(session: AsyncSession, name: str, *args: Any, **kwargs: Any) -> None:
    """Ask for ``name(*args, **kwargs)`` to be enqueued when ``session``'s transaction commits."""
    session.info.setdefault(_DEFERRED_KEY, []).append(DeferredJob(name, args, kwargs))


def take_deferred_jobs(session: AsyncSession) -> list[DeferredJob]:
    """Remove and return the jobs deferred on ``session``."""
    jobs: list[DeferredJob] = session.info.pop(_DEFERRED_KEY, [])
    return jobs
