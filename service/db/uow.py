"""Sessions by intent: a :data:`ReadSession` reads, a :data:`UnitOfWork` writes.

A read session runs in autocommit mode (no transaction, no lock held between statements) and is never
committed; signatures that take one promise to write nothing. A unit of work is one transaction owned by the
edge (REST request, GraphQL mutation, CLI command, job): :func:`service.jobs.enqueue.unit_of_work` commits it and
then enqueues the jobs deferred on it.

Units of work: jobs a transaction asks for are enqueued only once it has committed.

Services call :func:`defer_job` with the session they were given and a checked call of a declared job
(:meth:`service.jobs.typed.JobSpec.call`); the edge that owns the transaction (a REST request, a GraphQL
mutation, a job) commits, then hands the deferred jobs to arq. A rolled-back transaction enqueues nothing, so a
job never sees rows that were never written.

Live changes likewise: :func:`defer_change` records a :class:`~service.core.changes.Change` on the transaction, and
the edge publishes it (:func:`service.changefeed.publish_changes`) once the transaction has committed, so a
subscriber never hears of a row it cannot read yet, nor of one that was rolled back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NewType
from weakref import WeakKeyDictionary

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.core.changes import Change, Publish

_DEFERRED_KEY = "givfleet.deferred_jobs"
_NOTICES_KEY = "givfleet.deferred_notices"
_CHANGES_KEY = "givfleet.deferred_changes"

ReadSession = NewType("ReadSession", AsyncSession)
"""A session that only reads (autocommit: each statement stands alone; nothing is ever committed)."""

UnitOfWork = NewType("UnitOfWork", AsyncSession)
"""A session inside one write transaction, committed (then its deferred jobs enqueued) by the edge that owns it."""

_READ_FACTORIES: WeakKeyDictionary[async_sessionmaker[AsyncSession], async_sessionmaker[AsyncSession]] = (
    WeakKeyDictionary())


def read_only_sessions(session_factory: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    """Sessions in autocommit mode, for reads: no BEGIN/ROLLBACK round trips and no transaction left open."""
    cached = _READ_FACTORIES.get(session_factory)
    if cached is None:
        bind = session_factory.kw.get("bind")
        if not isinstance(bind, AsyncEngine):
            return session_factory
        cached = async_sessionmaker(bind.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False)
        _READ_FACTORIES[session_factory] = cached
    return cached


@asynccontextmanager
async def read_session(session_factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[ReadSession]:
    """A :data:`ReadSession`; its connection goes back to the pool when the block ends."""
    async with read_only_sessions(session_factory)() as session:
        yield ReadSession(session)


@dataclass(frozen=True)
class DeferredJob:
    """A job to enqueue: its name (``"domain.verb"``), queue, validated payload (JSON data) and uniqueness key.

    Build it with :meth:`service.jobs.typed.JobSpec.call`, which checks the payload.
    """

    name: str
    queue: str
    payload: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    replaces: str | None = None
    not_before: datetime | None = None
    """Run no earlier than this (a chain of short jobs waiting for a window or a retry delay)."""


def defer_job(session: AsyncSession, job: DeferredJob) -> None:
    """Ask for ``job`` to be enqueued when ``session``'s transaction commits."""
    session.info.setdefault(_DEFERRED_KEY, []).append(job)


def take_deferred_jobs(session: AsyncSession) -> list[DeferredJob]:
    """Remove and return the jobs deferred on ``session``."""
    jobs: list[DeferredJob] = session.info.pop(_DEFERRED_KEY, [])
    return jobs


def defer_notice(session: AsyncSession, channel: str, message: str) -> None:
    """Ask for ``message`` to be published on the (namespaced) Redis channel ``channel`` when ``session``'s
    transaction commits (and handed to this process's own listeners first): other processes hear of a change
    only once they can read it, and this one before its next request."""
    session.info.setdefault(_NOTICES_KEY, []).append((channel, message))


def take_deferred_notices(session: AsyncSession) -> list[tuple[str, str]]:
    """Remove and return the (channel, message) notices deferred on ``session``."""
    notices: list[tuple[str, str]] = session.info.pop(_NOTICES_KEY, [])
    return notices


_LOCAL_LISTENERS: dict[str, list[Callable[[str], None]]] = {}


def listen_locally(channel: str, listener: Callable[[str], None]) -> Callable[[], None]:
    """Call ``listener`` with each notice of ``channel`` committed by this process; returns the way to stop."""
    _LOCAL_LISTENERS.setdefault(channel, []).append(listener)
    return lambda: _LOCAL_LISTENERS[channel].remove(listener)


def deliver_locally(channel: str, message: str) -> None:
    """Hand a committed notice to this process's listeners of ``channel``."""
    for listener in list(_LOCAL_LISTENERS.get(channel, ())):
        listener(message)


def defer_change(session: AsyncSession, change: Change) -> None:
    """Ask for ``change`` to be published when ``session``'s transaction commits."""
    first_and_last: list[Change] = session.info.setdefault(_CHANGES_KEY, {}).setdefault((change.topic, change.id), [])
    first_and_last[1:] = [change]


def take_deferred_changes(session: AsyncSession) -> list[Change]:
    """Remove and return the changes deferred on ``session``, in the order rows first changed: per row its first
    change, then its last when that is of another kind. A row that changed several times in one transaction is
    announced as it began (an alert raised: ``alert.raised``) and as it ended (then cleared: ``alert.cleared``)."""
    rows: dict[tuple[object, object], list[Change]] = session.info.pop(_CHANGES_KEY, {})
    return [change for first, *rest in rows.values()
            for change in (first, *[last for last in rest if last.kind != first.kind])]


EnqueueJobs = Callable[[list[DeferredJob]], Awaitable[object]]
"""Hands the jobs a committed transaction deferred to the queue (``service.jobs.enqueue.enqueue_deferred``)."""

PublishNotices = Callable[[list[tuple[str, str]]], Awaitable[object]]
"""Publishes the (channel, message) notices a committed transaction deferred (:func:`defer_notice`); logs, never
raises."""


@asynccontextmanager
async def committed(session_factory: async_sessionmaker[AsyncSession], *, publish: Publish,
                    enqueue: EnqueueJobs | None = None,
                    notify: PublishNotices | None = None) -> AsyncIterator[AsyncSession]:
    """One transaction: commit it, then enqueue the jobs it deferred (when ``enqueue`` is given), publish the
    notices it deferred (when ``notify`` is given; even if enqueuing failed), and publish the changes it
    deferred. A transaction that rolls back (any exception in the block) does none of these; a failure to
    publish notices or changes leaves the commit standing (``notify`` and
    :data:`~service.core.changes.Publish` log, never raise)."""
    async with session_factory() as session:
        async with session.begin():
            yield session
        notices = take_deferred_notices(session) if notify is not None else []
        try:
            if enqueue is not None:
                jobs = take_deferred_jobs(session)
                if jobs:
                    await enqueue(jobs)
        finally:  # even when enqueuing failed: a notice may tell processes to stop serving a revoked key
            if notify is not None and notices:
                await notify(notices)
        changes = take_deferred_changes(session)
        if changes:
            await publish(changes)
