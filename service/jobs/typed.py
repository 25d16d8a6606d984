"""Typed job declarations: each job is declared next to its function with its name, queue, retries and payload.

Declare a job with :func:`job`; the decorated coroutine becomes a :class:`JobSpec` that the worker runs and that
callers turn into a checked call::

    class SyncPayload(Payload):
        tenant_id: uuid.UUID
        kind: SyncKind

    @job("mirror.sync", queue=Queue.BULK, payload=SyncPayload, max_tries=5, timeout=timedelta(hours=6),
         retry_delay=timedelta(seconds=30), retry_on=(TransientSyncError,))
    async def sync_tenant(ctx: JobContext, payload: SyncPayload) -> SyncResult: ...

    defer_job(session, sync_tenant.call(SyncPayload(tenant_id=t, kind=k), key=f"{t}:{k}"))

A payload is a frozen pydantic model: building it validates the fields, and :meth:`JobSpec.call` refuses a
payload of another type (or one built with ``model_construct`` that does not validate), so a bad payload raises
where it is enqueued, never in the worker. The worker validates the stored payload again before running.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from service.db.uow import DeferredJob


class Queue(enum.StrEnum):
    """The worker queues (namespaced in Redis as ``<namespace>:queue:<name>``)."""

    CONTROL = "control"
    """Campaign ticks and interactive control: short, latency-sensitive."""
    MONITOR = "monitor"
    """Fault polls."""
    BULK = "bulk"
    """Syncs: long, resumable."""
    NOTIFY = "notify"
    """Deliveries."""


class Payload(BaseModel):
    """Base of job payloads: frozen, no unknown fields, JSON-serialisable (ids, enums, numbers)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class NoPayload(Payload):
    """The payload of a job that takes none (cron jobs)."""


class PayloadError(TypeError):
    """A job was asked for with a payload that is not its declared, valid payload."""


P = TypeVar("P", bound=Payload)

JobFunction = Callable[[Any, P], Awaitable[object]]
"""``async def fn(ctx: JobContext, payload: P)``; ``ctx`` is typed by the function itself."""


@dataclass(frozen=True)
class JobSpec(Generic[P]):
    """A declared job (see the module docstring).

    Attributes:
        name: ``"domain.verb"``.
        queue: The queue it runs on.
        payload: Its payload model.
        run: The coroutine.
        max_tries: Attempts in all, the first included (a killed worker's attempt counts).
        timeout: Longest a single attempt may run.
        retry_delay: Delay before the second attempt on a ``retry_on`` error; doubled for each further one.
        retry_on: Exceptions meaning "transient, try again later"; anything else fails the job at once.
        keep_result: How long arq keeps the result (``0``: not at all, so the job id is free once it ends).
        cron: For a cron job, the seconds of the minute it runs at (every minute); ``None`` for others.
    """

    name: str
    queue: Queue
    payload: type[P]
    run: JobFunction[P]
    max_tries: int = 3
    timeout: timedelta = timedelta(minutes=10)
    retry_delay: timedelta = timedelta(seconds=10)
    retry_on: tuple[type[BaseException], ...] = ()
    keep_result: timedelta = timedelta(hours=1)
    cron: int | None = None

    def call(self, payload: P, *, key: str | None = None, replaces: str | None = None,
             not_before: datetime | None = None) -> DeferredJob:
        """A checked call of this job, to hand to :func:`service.db.uow.defer_job` or enqueue directly.

        Args:
            payload: The job's payload (its declared type).
            key: Makes the job unique while queued or running: asking again with the same key joins it.
            replaces: The key of a job known to be dead (its lease expired) that this one takes over: arq's
                in-progress mark of it is forgotten, so a new request with that key is not refused until the
                mark times out.
            not_before: Run no earlier than this (``None``: as soon as a worker is free).

        Raises:
            PayloadError: ``payload`` is not a valid instance of the declared payload type.
        """
        if type(payload) is not self.payload:
            raise PayloadError(f"{self.name} takes a {self.payload.__name__}, not a {type(payload).__name__}")
        data = payload.model_dump(mode="json", warnings=False)
        try:
            self.payload.model_validate(data)
        except ValidationError as exc:
            raise PayloadError(f"invalid payload for {self.name}: {exc}") from exc
        return DeferredJob(self.name, self.queue.value, data, key=key, replaces=replaces, not_before=not_before)

    def retry_delay_after(self, job_try: int) -> timedelta:
        """The back-off before the attempt after ``job_try``: ``retry_delay``, doubling each time."""
        return timedelta(seconds=self.retry_delay.total_seconds() * 2 ** max(0, job_try - 1))


def job(
    name: str,
    *,
    queue: Queue,
    payload: type[P],
    max_tries: int = 3,
    timeout: timedelta = timedelta(minutes=10),
    retry_delay: timedelta = timedelta(seconds=10),
    retry_on: tuple[type[BaseException], ...] = (),
    keep_result: timedelta = timedelta(hours=1),
    cron: int | None = None,
) -> Callable[[JobFunction[P]], JobSpec[P]]:
    """Declare the decorated coroutine as a job (see :class:`JobSpec` for the arguments)."""

    def declare(run: JobFunction[P]) -> JobSpec[P]:
        return JobSpec(name, queue, payload, run, max_tries=max_tries, timeout=timeout, retry_delay=retry_delay,
                       retry_on=retry_on, keep_result=keep_result, cron=cron)  # fmt: skip

    return declare
