"""One sync run of one tenant, from lock to record. The runner owns its transactions (like a job does).

A sync is long (a 10,000-inverter fleet with site statuses takes the better part of an hour at 300 requests a
minute), so it commits at checkpoints instead of holding one transaction:

1. **Lease**: the tenant's unfinished run row is the lease (at most one per tenant). The attempt takes it
   (``lease_owner``, ``lease_expires_at``) in a short transaction and a heartbeat renews it every third of
   ``lease``; no connection is held between checkpoints. A second attempt for the same tenant finds the lease
   held, waits (polling, without a connection) and then *joins*: it returns the run that finished meanwhile
   when that run covers it (a full sync covers a refresh). A run whose lease lapsed (a killed worker) is taken
   over, ``attempts`` + 1, progress kept; the attempt that lost it can no longer write (every checkpoint locks
   the run row and checks the owner) and stops at once (its heartbeat, finding the lease gone, cancels it:
   :class:`LeaseLostError`).
2. **Run row**: a run asked for by a request (``attempts`` 0, see :func:`service.mirror.service.request_sync`)
   or left by a dead attempt is adopted; otherwise a new one is created.
3. **Discovery and plan**: see :mod:`service.mirror.upstream`; the plan and its ETA are stored on the run.
4. **Lists**: fetched whole, reconciled against the stored rows and written in one transaction (a worker
   killed while fetching leaves the mirror as it was; the next attempt fetches again).
5. **Site statuses** (approved credentials): one call per site, written and checkpointed in batches; the
   next attempt resumes after the last checkpoint (an interrupted attempt checkpoints the part of its batch
   already fetched).
6. **Record**: requests used, 429s, 5xx, rows inserted/updated/removed, history rows, outcome.

A transient upstream failure (5xx, timeout, 429 after the client's own retries) of an attempt that is not the
last leaves the run resumable and raises :class:`TransientSyncError`: the job is retried later and resumes from
the checkpoint. A cancelled attempt (SIGTERM past the grace period, Ctrl-C on ``givfleet sync``) first checkpoints
the site statuses it already fetched, then releases its lease the same way; when no job queue will start it again
(the CLI), the lease is left lapsed, so the sweeper's next tick or the next request for a sync resumes it at once.
A process killed without clean-up keeps its lease until it lapses; then the sweeper revives the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.core.background import ticking
from service.core.clock import utcnow
from service.core.tenancy import TenantId
from service.db.models.credential import CredentialHealth
from service.db.models.mirror import StatusWork, SyncCheckpoint, SyncKind, SyncRun, SyncState
from service.db.models.monitoring import Severity
from service.db.models.notifications import NotificationEventType
from service.givenergy import PaymentRequiredError, RateLimitedError, UnauthorisedError, UpstreamUnavailableError
from service.mirror.reconcile import reconcile
from service.mirror.repository import MirrorRepository, SyncRunRepository
from service.mirror.schemas import Counts, Entity, SiteStatusRecord, SyncPlan
from service.mirror.upstream import (
    Discovery,
    Fetcher,
    RequestTap,
    UpstreamSession,
    build_plan,
    discover,
    eta_seconds,
    fetch_full,
    fetch_refresh,
    fetch_site_statuses,
)
from service.notifications.outbox import note_unhealthy, record_event
from service.settings import Settings
from service.tenants.repository import CredentialRepository
from service.upstream import UpstreamTarget

log = structlog.get_logger(__name__)

UpstreamResolver = Callable[[AsyncSession, TenantId], Awaitable[UpstreamTarget]]
"""Finds the credential a tenant syncs with (tests pass one speaking to the simulator in-process)."""

DEVICE_ENTITIES = (Entity.DONGLES, Entity.INVERTERS, Entity.BATTERIES, Entity.METERS)


@dataclass(frozen=True)
class SyncOptions:
    """Tuning of a sync.

    Attributes:
        page_size: ``pageSize`` of list requests (the API has no documented maximum; real clients use 1000+).
        concurrency: Requests in flight at once (the rate limiter paces them).
        seen_granularity: Refresh ``last_seen_at`` of unchanged rows at most this often.
        status_batch: Site statuses fetched per checkpoint.
        site_status: Fetch site statuses (when the credential is approved).
        site_status_spread: Spread the per-site status calls over this many runs (scheduled syncs: the number
            of refreshes per full interval): each run, full or refresh, checks the next slice of sites,
            round-robin, so every site is checked once per cycle instead of all in one burst. ``None``: a full
            sync checks every site, a refresh none (explicit syncs, ``givfleet sync``).
        lease: How long an attempt's lease on its run lasts without a heartbeat (renewed every third of it).
        lease_poll_seconds: How often an attempt waiting for another attempt's run looks again.
    """

    page_size: int = 1000
    concurrency: int = 8
    seen_granularity: timedelta = timedelta(hours=24)
    status_batch: int = 200
    site_status: bool = True
    site_status_spread: int | None = None
    lease: timedelta = timedelta(seconds=90)
    lease_poll_seconds: float = 1.0


def options_from(settings: Settings, *, spread: int | None = None) -> SyncOptions:
    """Sync options from the ``sync`` settings group."""
    group = settings.sync
    return SyncOptions(
        page_size=group.page_size,
        concurrency=group.concurrency,
        seen_granularity=timedelta(seconds=group.last_seen_granularity_seconds),
        status_batch=group.status_batch,
        site_status_spread=spread,
        lease=timedelta(seconds=settings.worker.stall_seconds),
    )


@dataclass(frozen=True)
class SyncProgress:
    """What a progress callback is told: the phase, requests made and planned so far."""

    phase: str
    requests: int
    planned: int | None


@dataclass
class SyncOutcome:
    """The result of :meth:`SyncRunner.run`."""

    run_id: uuid.UUID
    kind: SyncKind
    state: SyncState
    plan: SyncPlan | None
    requests_used: int
    rate_limited: int
    server_errors: int
    counts: Counts = field(default_factory=Counts)
    joined: bool = False
    error: str | None = None
    attempts: int = 1

    @classmethod
    def of(cls, run: SyncRun, *, joined: bool = False, plan: SyncPlan | None = None) -> SyncOutcome:
        """The outcome recorded on a run row."""
        return cls(
            run_id=run.id,
            kind=run.kind,
            state=run.state,
            plan=plan,
            requests_used=run.requests_used,
            rate_limited=run.rate_limited,
            server_errors=run.server_errors,
            counts=Counts(run.rows_inserted, run.rows_updated, run.rows_removed, run.history_rows),
            joined=joined,
            error=run.error,
            attempts=run.attempts,
        )


class TransientSyncError(Exception):
    """An attempt stopped on a transient upstream failure; its run is resumable and the job should retry."""


class LeaseLostError(Exception):
    """The attempt's lease on its run was taken over (it stalled past its expiry): it must stop writing."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    UpstreamUnavailableError, RateLimitedError, httpx.TimeoutException, httpx.TransportError,
)
"""Upstream failures worth another attempt later (the client has already retried each request)."""


def covers(done: SyncKind, wanted: SyncKind) -> bool:
    """Whether a run of kind ``done`` does what a request for ``wanted`` asks (a full sync covers a refresh)."""
    return done is SyncKind.FULL or wanted is SyncKind.REFRESH


def _attempt_owner() -> str:
    """A lease owner unique to this attempt, naming its host and process for operators."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class SyncRunner:
    """Runs syncs (see the module docstring for the steps)."""

    def __init__(
        self,
        engine: AsyncEngine,
        session_factory: async_sessionmaker[AsyncSession],
        resolver: UpstreamResolver,
        options: SyncOptions | None = None,
        on_progress: Callable[[SyncProgress], None] | None = None,
    ) -> None:
        self.engine = engine
        self.session_factory = session_factory
        self.resolver = resolver
        self.options = options or SyncOptions()
        self.on_progress = on_progress

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.session_factory() as session, session.begin():
            yield session

    async def run(
        self,
        tenant_id: TenantId,
        kind: SyncKind,
        *,
        job_id: str | None = None,
        run_id: uuid.UUID | None = None,
        final_attempt: bool = True,
        requeued_when_cancelled: bool = False,
    ) -> SyncOutcome:
        """Sync one tenant (or join the sync already running for it).

        Args:
            tenant_id: The tenant.
            kind: Full sync or refresh.
            job_id: The arq job id (recorded on the run).
            run_id: The run this attempt was asked to work on (a request creates it); when another attempt has
                finished it meanwhile, its outcome is returned (joined).
            final_attempt: Record a transient failure as the run's failure; otherwise leave the run resumable and
                raise :class:`TransientSyncError` so that the job is retried.
            requeued_when_cancelled: Whoever runs this attempt starts it again when it is cancelled (arq re-queues
                a job cancelled at shutdown): the released run waits a lease's length for that before the
                sweeper revives it. Otherwise (``givfleet sync`` interrupted) nobody would, and the run is left
                with its lease lapsed: the next request for a sync, or the sweeper's next tick, resumes it at once.

        Returns:
            The outcome; a failed sync is recorded and returned with ``state`` failed, not raised.

        Raises:
            TransientSyncError: A transient upstream failure on an attempt that is not the last.
        """
        owner = _attempt_owner()
        wanted = run_id
        while True:
            claim = await self._claim(tenant_id, kind, job_id, owner, wanted)
            if isinstance(claim, SyncOutcome):
                return claim
            if isinstance(claim, _Claimed):
                return await self._run_claimed(tenant_id, claim, final_attempt, requeued_when_cancelled)
            if claim is not None:  # held by another attempt: wait for it, then join it if it covers us
                wanted = wanted or claim
                await asyncio.sleep(self.options.lease_poll_seconds)

    async def _claim(
        self, tenant_id: TenantId, kind: SyncKind, job_id: str | None, owner: str, wanted: uuid.UUID | None
    ) -> SyncOutcome | _Claimed | uuid.UUID | None:
        """Take the tenant's run: a joined outcome, the claimed run, or the id of the run another attempt holds
        (``None``: held, but already gone again; try at once)."""
        async with self._transaction() as session:
            runs = SyncRunRepository(session, tenant_id)
            if wanted is not None:
                done = await runs.get(wanted)
                if done is not None and done.state is not SyncState.RUNNING and covers(done.kind, kind):
                    return SyncOutcome.of(done, joined=True)
            now = utcnow()
            expires = now + self.options.lease
            run = await runs.running(for_update=True)
            if run is None:
                checkpoint = SyncCheckpoint(spread=self.options.site_status_spread)
                run = await runs.new_run(kind, now=now, job_id=job_id, lease_owner=owner, lease_expires_at=expires,
                                         checkpoint=checkpoint)  # fmt: skip
                if run is None:  # another attempt created one first: wait for it
                    held = await runs.running()
                    return held.id if held is not None else None
            elif run.lease_owner is None or run.lease_expires_at is None or run.lease_expires_at <= now:
                if run.attempts:
                    log.info("mirror.sync.adopted", run_id=str(run.id), attempts=run.attempts + 1,
                             previous_owner=run.lease_owner)  # fmt: skip
                run.attempts += 1
                run.lease_owner, run.lease_expires_at, run.heartbeat_at = owner, expires, now
                run.job_id = job_id or run.job_id
                if kind is SyncKind.FULL and run.kind is not SyncKind.FULL:
                    run.kind = SyncKind.FULL  # the refresh left unfinished becomes the full sync asked for now
                    run.progress = SyncCheckpoint(spread=run.progress.spread)
            else:
                return run.id
            try:
                target = await self.resolver(session, tenant_id)
            except Exception as exc:
                run.state, run.finished_at, run.error = SyncState.FAILED, utcnow(), f"no usable credential: {exc}"
                run.lease_owner = None
                await _note_failure(session, tenant_id, run)
                return SyncOutcome.of(run)
            run.credential_id = target.credential_id
            state = _RunState(run.id, run.kind, owner, run.progress, run.requests_used, run.rate_limited,
                              run.server_errors, run.attempts)  # fmt: skip
            return _Claimed(state, target)

    async def _run_claimed(
        self, tenant_id: TenantId, claim: _Claimed, final_attempt: bool, requeued_when_cancelled: bool
    ) -> SyncOutcome:
        state, target = claim.state, claim.target
        tap = RequestTap(on_response=lambda count: self._report(state, count))
        state.tap = tap
        try:
            async with self._heartbeat(tenant_id, state), UpstreamSession(target, tap) as upstream:
                fetcher = Fetcher(upstream, page_size=self.options.page_size, concurrency=self.options.concurrency)
                if state.progress.stage == "lists":
                    await self._lists(tenant_id, state, fetcher, target)
                if state.progress.stage == "statuses":
                    await self._statuses(tenant_id, state, fetcher, target)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if state.lease_lost and task is not None and task.uncancel() == 0:  # cancelled by the heartbeat only
                log.warning("mirror.sync.lease_lost", tenant_id=str(tenant_id), run_id=str(state.run_id))
                raise LeaseLostError(f"sync run {state.run_id} was taken over") from None
            await _clean_up(self._release(tenant_id, state, None, lapse=not requeued_when_cancelled),
                            "mirror.sync.release_failed", tenant_id)
            raise
        except LeaseLostError:
            log.warning("mirror.sync.lease_lost", tenant_id=str(tenant_id), run_id=str(state.run_id))
            raise
        except Exception as exc:
            if isinstance(exc, TRANSIENT_ERRORS) and not final_attempt:
                log.warning("mirror.sync.interrupted", tenant_id=str(tenant_id), error=str(exc))
                await self._release(tenant_id, state, f"{type(exc).__name__}: {exc} (will retry)")
                raise TransientSyncError(str(exc)) from exc
            log.warning("mirror.sync.failed", tenant_id=str(tenant_id), error=str(exc))
            async with self._transaction() as session:
                await _note_credential_state(session, tenant_id, target, exc)
                run = await self._load(session, tenant_id, state)
                run.state, run.finished_at, run.error = SyncState.FAILED, utcnow(), f"{type(exc).__name__}: {exc}"
                run.lease_owner = None
                await _note_failure(session, tenant_id, run)
                return SyncOutcome.of(run, plan=state.plan)
        async with self._transaction() as session:
            run = await self._load(session, tenant_id, state)
            run.state, run.finished_at, run.error = SyncState.SUCCEEDED, utcnow(), None
            run.progress = state.progress.model_copy(update={"stage": "done"})
            run.lease_owner = None
            log.info("mirror.sync.succeeded", tenant_id=str(tenant_id), run_id=str(run.id),
                     requests=run.requests_used, planned=run.planned_requests, inserted=run.rows_inserted,
                     updated=run.rows_updated, removed=run.rows_removed)  # fmt: skip
            return SyncOutcome.of(run, plan=state.plan)

    async def _release(self, tenant_id: TenantId, state: _RunState, error: str | None, *, lapse: bool = False) -> None:
        """Record the attempt's counters and give the lease up: the run stays ``running``, resumable by the next
        attempt (a retry, or the job the sweeper enqueues once the lease has lapsed).

        ``lapse``: no retry is coming, so the lease is left lapsed instead of lasting its length, and the sweeper's
        next tick (or the next request for a sync) revives the run at once. Either way whoever resumes it takes
        the lease first (:meth:`_claim` locks the run row), so only one attempt runs it.
        """
        async with self._transaction() as session:
            run = await self._load(session, tenant_id, state)
            run.lease_owner = None
            run.error = error
            if lapse:
                run.lease_expires_at = run.heartbeat_at

    @contextlib.asynccontextmanager
    async def _heartbeat(self, tenant_id: TenantId, state: _RunState) -> AsyncIterator[None]:
        """Renew the attempt's lease every third of its length while the block runs (the lists stage may fetch
        for many minutes between checkpoints). When the lease is found lost (taken over by the sweeper), the
        block's task is cancelled at once (``state.lease_lost`` tells why), so that it spends no more of the
        shared request budget."""
        work = asyncio.current_task()

        async def beat() -> bool:
            now = utcnow()
            async with self._transaction() as session:
                renewed = await SyncRunRepository(session, tenant_id).renew_lease(
                    state.run_id, state.owner, now=now, expires_at=now + self.options.lease
                )
            if not renewed and work is not None:
                state.lease_lost = True
                work.cancel()
            return renewed

        async with ticking(beat, self.options.lease.total_seconds() / 3, f"sync-heartbeat:{tenant_id}"):
            yield

    def _report(self, state: _RunState, count: int) -> None:
        if self.on_progress is not None:
            planned = state.plan.requests if state.plan is not None else None
            self.on_progress(SyncProgress(state.phase, count, planned))

    async def _load(self, session: AsyncSession, tenant_id: TenantId, state: _RunState) -> SyncRun:
        """Re-load and lock the run (a sweeper taking it over waits for this transaction, or this one sees it
        taken), check the attempt still holds it and copy the attempt's counters onto it."""
        run = await SyncRunRepository(session, tenant_id).get(state.run_id, for_update=True)
        if run is None:  # deleted under us (tenant removed): nothing sensible to record
            raise LookupError("sync run disappeared")
        if run.lease_owner != state.owner:
            raise LeaseLostError(f"sync run {run.id} is now held by {run.lease_owner}")
        tap = state.tap
        run.requests_used = state.base_requests + (tap.requests if tap else 0)
        run.rate_limited = state.base_rate_limited + (tap.rate_limited if tap else 0)
        run.server_errors = state.base_server_errors + (tap.server_errors if tap else 0)
        run.heartbeat_at = utcnow()
        run.lease_expires_at = run.heartbeat_at + self.options.lease
        run.progress = state.progress
        return run

    async def _set_plan(self, session: AsyncSession, tenant_id: TenantId, state: _RunState, plan: SyncPlan) -> None:
        state.plan = plan
        run = await self._load(session, tenant_id, state)
        run.planned_requests = state.base_requests + plan.requests
        run.planned_eta_seconds = plan.eta_seconds
        if state.tap is not None:
            self._report(state, state.tap.requests)
        log.info("mirror.sync.plan", tenant_id=str(tenant_id), requests=plan.requests, steps=plan.steps,
                 eta_seconds=plan.eta_seconds)  # fmt: skip

    async def _lists(self, tenant_id: TenantId, state: _RunState, fetcher: Fetcher, target: UpstreamTarget) -> None:
        full = state.kind is SyncKind.FULL
        state.phase = "discovery"
        discovery = await discover(fetcher, state.tap or RequestTap(), full=full)
        spread = self.options.site_status_spread
        async with self._transaction() as session:
            recent = await SyncRunRepository(session, tenant_id).latest(limit=50)
            if full:
                approved = discovery.approved and self.options.site_status
            else:
                approved = spread is not None and self.options.site_status and _was_approved(recent)
            work = await self._status_work(session, tenant_id, discovery, recent, approved=approved, spread=spread)
        plan = build_plan(discovery, full=full)
        steps = {**plan.steps, "site_status": work.count}
        plan = SyncPlan(sum(steps.values()), steps, None)
        plan = plan._replace(eta_seconds=await eta_seconds(target.limiter, plan.requests - discovery.requests))
        async with self._transaction() as session:
            await self._set_plan(session, tenant_id, state, plan)
        state.phase = "lists"
        clock = time.perf_counter()
        snapshot = await (fetch_full(fetcher, discovery) if full else fetch_refresh(fetcher, discovery))
        timings = {"fetch": time.perf_counter() - clock}
        state.phase = "writing"
        now = utcnow()
        async with self._transaction() as session:
            mirror = MirrorRepository(session, tenant_id)
            entities = list(Entity) if full else list(DEVICE_ENTITIES)
            clock = time.perf_counter()
            stored = await mirror.stored(entities)
            links = None if full else await mirror.known_links()
            timings["load"] = time.perf_counter() - clock
            probe = [discovery.site_status_probe] if approved and discovery.site_status_probe else None
            clock = time.perf_counter()
            reconciliation = reconcile(
                snapshot,
                stored,
                now=now,
                seen_granularity=self.options.seen_granularity,
                site_statuses=probe,
                links=links,
            )
            timings["reconcile"] = time.perf_counter() - clock
            clock = time.perf_counter()
            counts = await mirror.write(reconciliation, now=now, run_id=state.run_id)
            timings["write"] = time.perf_counter() - clock
            log.info("mirror.sync.lists", tenant_id=str(tenant_id), **{k: round(v, 3) for k, v in timings.items()})
            run = await self._load(session, tenant_id, state)
            _add_counts(run, counts)
            progress = state.progress.model_copy(update={
                "stage": "statuses" if work.count else "done",
                "seen": counts.seen,
                "seconds": {k: round(v, 3) for k, v in timings.items()},
                "status_work": work,
                "status_done": 0,
                "status_cursor": work.cursor if work.cursor is not None and not work.count else None,
            })  # fmt: skip
            run.progress = progress
            run.site_status_included = approved
        state.progress = progress  # only once stored: a release after a failed commit must redo the lists

    async def _status_work(
        self,
        session: AsyncSession,
        tenant_id: TenantId,
        discovery: Discovery,
        recent: Sequence[SyncRun],
        *,
        approved: bool,
        spread: int | None,
    ) -> StatusWork:
        """Which site statuses this run checks (``cursor``: where the previous cycle stopped, found in the
        ``recent`` runs, newest first)."""
        cursor = next((run.progress.status_cursor for run in recent if run.progress.status_cursor is not None), None)
        skip = discovery.site_status_probe.upstream_id if discovery.site_status_probe is not None else None
        if not approved:
            return StatusWork(after=None, count=0, skip=skip, cursor=cursor)
        if discovery.sites is not None and discovery.sites.first.total is not None:
            sites = discovery.sites.first.total
        else:
            sites = len(await MirrorRepository(session, tenant_id).site_ids())
        if spread is None:
            return StatusWork(after=None, count=max(0, sites - (1 if skip is not None else 0)), skip=skip,
                              cursor=cursor)  # fmt: skip
        return StatusWork(after=cursor, count=min(sites, -(-sites // max(1, spread))), skip=None, cursor=cursor)

    async def _statuses(self, tenant_id: TenantId, state: _RunState, fetcher: Fetcher, target: UpstreamTarget) -> None:
        state.phase = "site_status"
        work = state.progress.status_work or StatusWork()
        async with self._transaction() as session:
            site_ids = [s for s in await MirrorRepository(session, tenant_id).site_ids() if s != work.skip]
        after = work.after
        start = next((i for i, site in enumerate(site_ids) if after is None or site > after), 0)
        ordered = (site_ids[start:] + site_ids[:start])[: work.count]
        done = state.progress.status_done
        todo = ordered[done:]
        if state.plan is None:  # adopted at this stage: the rest of the plan is the statuses left
            plan = SyncPlan(len(todo), {"site_status": len(todo)}, await eta_seconds(target.limiter, len(todo)))
            async with self._transaction() as session:
                await self._set_plan(session, tenant_id, state, plan)
        batch = max(1, self.options.status_batch)
        for first in range(0, len(todo), batch):
            chunk = todo[first : first + batch]
            fetched: dict[int, SiteStatusRecord] = {}
            try:
                await fetch_site_statuses(fetcher, chunk, fetched)
            except BaseException:
                # Interrupted (cancelled, or a call failed): keep the statuses this batch already paid for, up to
                # the first one missing, so that the next attempt does not ask for them again.
                checked = [fetched[site] for site in itertools.takewhile(fetched.__contains__, chunk)]
                if checked and not state.lease_lost:
                    await _clean_up(self._checkpoint_statuses(tenant_id, state, ordered, checked),
                                    "mirror.sync.partial_checkpoint_failed", tenant_id)
                raise
            await self._checkpoint_statuses(tenant_id, state, ordered, [fetched[site] for site in chunk])
        state.progress = state.progress.model_copy(update={"stage": "done"})

    async def _checkpoint_statuses(
        self, tenant_id: TenantId, state: _RunState, ordered: Sequence[int], statuses: Sequence[SiteStatusRecord]
    ) -> None:
        """Store the statuses just checked and move the checkpoint past them (``ordered``: the sites this run
        checks, in order; ``statuses`` are the next of them)."""
        done = state.progress.status_done + len(statuses)
        progress = state.progress.model_copy(update={
            "status_done": done, "status_cursor": ordered[-1] if done == len(ordered) else None,
        })  # fmt: skip
        async with self._transaction() as session:
            mirror = MirrorRepository(session, tenant_id)
            changed = await mirror.set_site_statuses([(s.upstream_id, s.scheme_status) for s in statuses], now=utcnow())
            run = await self._load(session, tenant_id, state)
            run.rows_updated += changed
            run.progress = progress
        state.progress = progress  # only once stored: a release after a failed commit must not claim these sites


async def _clean_up(work: Coroutine[Any, Any, None], failure_event: str, tenant_id: TenantId) -> None:
    """Run ``work``, clean-up around an interruption already being handled, to its end.

    A cancellation arriving meanwhile waits for it and is raised after it (the next step, a release, must not
    overlap it); a failure of ``work`` is logged as ``failure_event``, never raised: it must not replace the
    interruption (a Ctrl-C or a transient error would otherwise end as a failed run).
    """
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait([task])  # never cancels the task, nor raises its failure (read below)
        except asyncio.CancelledError:
            cancelled = True
    if not task.cancelled() and task.exception() is not None:
        log.warning(failure_event, tenant_id=str(tenant_id), error=repr(task.exception()))
    if cancelled:
        raise asyncio.CancelledError


@dataclass
class _RunState:
    """What the attempt carries between its transactions."""

    run_id: uuid.UUID
    kind: SyncKind
    owner: str
    progress: SyncCheckpoint
    base_requests: int
    base_rate_limited: int
    base_server_errors: int
    attempts: int
    plan: SyncPlan | None = None
    tap: RequestTap | None = None
    phase: str = "starting"
    lease_lost: bool = False


@dataclass(frozen=True)
class _Claimed:
    """A run whose lease this attempt holds, and the upstream it syncs from."""

    state: _RunState
    target: UpstreamTarget


async def _note_credential_state(
    session: AsyncSession, tenant_id: TenantId, target: UpstreamTarget, error: Exception
) -> None:
    """A 401 or 402 is the credential's state, not a transient error: record it for the tenant to see (a 403
    may concern one endpoint or scope only; the credential check tells those apart)."""
    health = {UnauthorisedError: CredentialHealth.UNAUTHORISED, PaymentRequiredError: CredentialHealth.NO_SUBSCRIPTION}
    found = next((value for kind, value in health.items() if isinstance(error, kind)), None)
    if found is None or target.credential_id is None:
        return
    credential = await CredentialRepository(session, tenant_id).get(target.credential_id)
    if credential is not None:
        await note_unhealthy(session, credential, found)
        credential.health = found
        credential.health_message = f"sync refused by GivEnergy: {error}"[:500]
        credential.last_checked_at = utcnow()


async def _note_failure(session: AsyncSession, tenant_id: TenantId, run: SyncRun) -> None:
    await record_event(session, tenant_id, NotificationEventType.SYNC_FAILED, f"sync:{run.id}:failed",
                       f"{run.kind.value} sync failed: {run.error}", severity=Severity.MAJOR)


def _was_approved(recent: Sequence[SyncRun]) -> bool:
    """Whether the tenant's latest successful full sync among the ``recent`` runs (newest first) could read
    site statuses."""
    for run in recent:
        if run.kind is SyncKind.FULL and run.state is SyncState.SUCCEEDED:
            return run.site_status_included
    return False


def _add_counts(run: SyncRun, counts: Counts) -> None:
    run.rows_inserted += counts.inserted
    run.rows_updated += counts.updated
    run.rows_removed += counts.removed
    run.history_rows += counts.history
