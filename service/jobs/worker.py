"""Building the arq worker from givfleet's resources."""

from __future__ import annotations

from typing import Any

from arq.worker import Worker

from service.jobs.registry import CRON_JOBS, JOBS
from service.runtime import Resources, queue_name


def build_worker(resources: Resources, *, burst: bool = False, handle_signals: bool = True) -> Worker:
    """A worker on this deployment's queue, with ``resources`` in every job's context.

    Args:
        resources: Shared engine, session factory and Redis; the worker reuses the Redis connection pool.
        burst: Stop once the queue is empty (tests, one-off runs).
        handle_signals: Let arq install SIGINT/SIGTERM handlers; ``givfleet up`` handles signals itself.
    """
    ctx: dict[str, Any] = {"resources": resources}
    return Worker(
        functions=JOBS,
        cron_jobs=CRON_JOBS,
        queue_name=queue_name(resources.settings),
        redis_pool=resources.redis,
        ctx=ctx,
        burst=burst,
        handle_signals=handle_signals,
        max_jobs=10,
        job_timeout=3600,
        keep_result=3600,
        poll_delay=0.5,
    )
