"""Building arq workers from givfleet's resources: one worker per queue, several in one process.

Every job runs under a lease on arq's in-progress mark: arq sets that mark for the job's whole timeout (hours
for a sync), so a killed worker would strand its job until then. While a job runs, the mark is renewed to
``worker.stall_seconds``; once its worker dies the mark lapses within that time and any worker picks the job
up again (arq counts the attempt). Long jobs also keep a lease row of their own in PostgreSQL (see the mirror's
sync runs), which the domain's sweeper uses to revive work whose heartbeat stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import structlog
from arq import Retry
from arq.constants import in_progress_key_prefix
from arq.cron import CronJob, cron
from arq.worker import Function, Worker

from service.core.background import ticking
from service.core.signals import cancel_and_wait
from service.jobs.typed import JobSpec, Queue
from service.runtime import NamespacedRedis, Resources
from service.settings import Settings
from service.worker.registry import JOBS

log = structlog.get_logger(__name__)


class UnknownQueueError(ValueError):
    """A queue name that is not one of givfleet's queues."""


def parse_queues(text: str) -> list[Queue]:
    """``"control,monitor"`` -> the queues, in order, without repeats.

    Raises:
        UnknownQueueError: A name is not a queue (the message lists the valid ones).
    """
    names = [name.strip() for name in text.split(",") if name.strip()]
    valid = [queue.value for queue in Queue]
    unknown = [name for name in names if name not in valid]
    if unknown or not names:
        raise UnknownQueueError(f"unknown queue {', '.join(unknown) or '(none given)'}: choose from {', '.join(valid)}")
    return list(dict.fromkeys(Queue(name) for name in names))


def pool_size_for(settings: Settings, queues: Sequence[Queue]) -> int:
    """Database connections a worker process keeps: one per job it may run at once (``max_jobs`` per queue).

    A job holds at most one connection at a time (transactions are short; no lock is held across a run); the
    extra connection a sync's heartbeat takes for a moment comes from ``db.max_overflow``.
    """
    return settings.worker.max_jobs * len(queues)


@contextlib.asynccontextmanager
async def _keep_in_progress(redis: NamespacedRedis, job_id: str | None, stall_seconds: int) -> AsyncIterator[None]:
    """Renew arq's in-progress mark of ``job_id`` to ``stall_seconds`` every third of that, for the block."""
    if job_id is None:
        yield
        return
    key = in_progress_key_prefix + job_id

    async def renew() -> bool:
        await redis.pexpire(key, stall_seconds * 1000)
        return True

    async with ticking(renew, stall_seconds / 3, f"in-progress:{job_id}", at_once=True):
        yield


def arq_function(spec: JobSpec[Any], resources: Resources) -> Function:
    """The arq function running ``spec``: validates the payload, keeps the lease, turns ``retry_on`` errors into a
    delayed retry (until ``max_tries``)."""

    async def run(ctx: dict[str, Any], payload: dict[str, Any] | None = None) -> object:
        model = spec.payload.model_validate(payload or {})
        job_try = int(ctx.get("job_try", 1))
        async with _keep_in_progress(resources.redis, ctx.get("job_id"), resources.settings.worker.stall_seconds):
            try:
                return await spec.run(ctx, model)
            except spec.retry_on as exc:
                if job_try >= spec.max_tries:
                    raise
                delay = spec.retry_delay_after(job_try)
                log.info("job.retry", job=spec.name, job_try=job_try, delay_seconds=delay.total_seconds(),
                         error=str(exc))  # fmt: skip
                raise Retry(defer=delay) from exc

    run.__qualname__ = spec.name
    return Function(
        name=spec.name,
        coroutine=run,
        timeout_s=spec.timeout.total_seconds(),
        keep_result_s=spec.keep_result.total_seconds(),
        keep_result_forever=False,
        max_tries=spec.max_tries,
    )


def build_worker(
    resources: Resources, queue: Queue, *, burst: bool = False, handle_signals: bool = False, max_burst_jobs: int = -1
) -> Worker:
    """A worker for one queue, with ``resources`` in every job's context.

    Its cron jobs (declared with ``cron=``) are named with the namespace, so their ids (name and time) never
    collide with another deployment's; ``unique`` makes several workers of one deployment enqueue each tick once.

    Args:
        resources: Shared engine, session factory and Redis; the worker reuses the Redis connection pool.
        queue: The queue it takes jobs from.
        burst: Stop once the queue is empty (tests, one-off runs). A burst worker runs no cron jobs: whether a
            tick fired would depend on the wall clock crossing a minute while it drains.
        handle_signals: Let arq install SIGINT/SIGTERM handlers (only for a lone worker; a :class:`WorkerGroup`
            handles signals for all its workers).
        max_burst_jobs: In burst mode, stop after this many jobs (``-1``: no limit).
    """
    specs = [spec for spec in JOBS if spec.queue is queue]
    functions = [arq_function(spec, resources) for spec in specs if spec.cron is None]
    crons: list[CronJob] = [
        cron(arq_function(spec, resources).coroutine, name=f"{resources.redis.namespace}:{spec.name}",
             second=spec.cron, unique=True, timeout=spec.timeout.total_seconds(), max_tries=spec.max_tries)
        for spec in specs if spec.cron is not None and not burst
    ]  # fmt: skip
    ctx: dict[str, Any] = {"resources": resources}
    return Worker(
        functions=functions,
        cron_jobs=crons,
        queue_name=resources.redis.queue(queue),
        redis_pool=resources.redis,
        ctx=ctx,
        burst=burst,
        max_burst_jobs=max_burst_jobs,
        handle_signals=handle_signals,
        max_jobs=resources.settings.worker.max_jobs,
        job_timeout=3600,
        keep_result=3600,
        poll_delay=0.5,
    )


class WorkerGroup:
    """One arq worker per queue in this process, stopped together and gracefully.

    On :meth:`stop` (SIGTERM) no worker takes a new job; running jobs get ``worker.shutdown_grace_seconds`` to
    finish, then are cancelled. A cancelled job stays resumable: arq re-queues it, and a sync keeps its checkpoint
    and releases its lease.
    """

    def __init__(self, resources: Resources, queues: Sequence[Queue]) -> None:
        self.resources = resources
        served = {spec.queue for spec in JOBS}
        idle = [queue.value for queue in queues if queue not in served]
        if idle:  # arq refuses a worker without functions; the queue gets one once a job is declared on it
            log.info("worker.queues_without_jobs", queues=idle)
        self.workers = [build_worker(resources, queue) for queue in queues if queue in served]

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (or a worker fails), then drain and close."""
        tasks = [asyncio.create_task(worker.async_run(), name=f"worker:{worker.queue_name}") for worker in self.workers]
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            await self._drain()
            for task in tasks:  # redis-py can swallow one cancellation, and arq's loop then goes on: insist
                await cancel_and_wait(task)
            outcomes = [task.exception() for task in tasks if not task.cancelled()]
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise outcome

    async def _drain(self) -> None:
        for worker in self.workers:
            worker.allow_pick_jobs = False
        running = [task for worker in self.workers for task in worker.tasks.values() if not task.done()]
        log.info("worker.stopping", running_jobs=len(running))
        if running:
            await asyncio.wait(running, timeout=self.resources.settings.worker.shutdown_grace_seconds)
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)


async def drain_queues(resources: Resources, queues: Sequence[Queue] = tuple(Queue)) -> None:
    """Run burst workers over ``queues`` until each is empty (tests, one-off runs)."""
    for queue in queues:
        await build_worker(resources, queue, burst=True).main()
