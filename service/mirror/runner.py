"""One sync run of one tenant, from lock to record. The runner owns its transactions (like a job does).

A sync is long (a 10,000-inverter fleet with site statuses takes the better part of an hour at 300 requests a
minute), so it commits at checkpoints instead of holding one transaction:

1. **Lock**: a PostgreSQL session advisory lock per tenant, held on a connection of its own for the whole
   run. A second request for the same tenant waits for the lock and then *joins*: it returns the run that
   finished meanwhile when that run covers it (a full sync covers a refresh). A killed worker's connection
   drops, so its lock is released by PostgreSQL itself.
2. **Run row**: the tenant's ``running`` row left by a killed worker is adopted (``attempts`` + 1, progress
   kept); otherwise a new one is created.
3. **Discovery and plan**: see :mod:`service.mirror.upstream`; the plan and its ETA are stored on the run.
4. **Lists**: fetched whole, reconciled against the stored rows and written in one transaction (a worker
   killed while fetching leaves the mirror as it was; the next attempt fetches again).
5. **Site statuses** (approved credentials): one call per site, written and checkpointed in batches; the
   next attempt resumes after the last checkpoint.
6. **Record**: requests used, 429s, 5xx, rows inserted/updated/removed, history rows, outcome.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from service.core.clock import utcnow
from service.core.errors import NotFoundError
from service.core.tenancy import TenantId, tenant_id_from
from service.db.models.credential import CredentialHealth
from service.db.models.mirror import SyncKind, SyncRun, SyncState
from service.givenergy import PaymentRequiredError, UnauthorisedError
from service.mirror.reconcile import reconcile
from service.mirror.repository import MirrorRepository, SyncRunRepository
from service.mirror.schemas import Counts, Entity, SyncPlan
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
from service.runtime import Resources
from service.settings import Settings
from service.tenants.repository import CredentialRepository, TenantRepository
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
    """

    page_size: int = 1000
    concurrency: int = 8
    seen_granularity: timedelta = timedelta(hours=24)
    status_batch: int = 200
    site_status: bool = True
    site_status_spread: int | None = None


def options_from(settings: Settings, *, spread: int | None = None) -> SyncOptions:
    """Sync options from the ``sync`` settings group."""
    group = settings.sync
    return SyncOptions(
        page_size=group.page_size,
        concurrency=group.concurrency,
        seen_granularity=timedelta(seconds=group.last_seen_granularity_seconds),
        site_status_spread=spread,
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


def lock_key(tenant_id: TenantId) -> int:
    """The advisory-lock key of a tenant's sync (64 bits of its id, signed as PostgreSQL wants)."""
    return int.from_bytes(uuid.UUID(str(tenant_id)).bytes[:8], "big", signed=True) ^ 0x6D6972726F72  # "mirror"


@contextlib.asynccontextmanager
async def tenant_lock(engine: AsyncEngine, tenant_id: TenantId) -> AsyncIterator[bool]:
    """Hold the tenant's sync lock for the block; yields whether it was free at once (``False``: we waited)."""
    key = lock_key(tenant_id)
    async with engine.connect() as connection:
        free = bool((await connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar_one())
        if not free:
            await connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        await connection.commit()
        try:
            yield free
        finally:
            with contextlib.suppress(Exception):
                await connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                await connection.commit()


def _covers(done: SyncKind, wanted: SyncKind) -> bool:
    return done is SyncKind.FULL or wanted is SyncKind.REFRESH


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

    async def run(self, tenant_id: TenantId, kind: SyncKind, *, job_id: str | None = None) -> SyncOutcome:
        """Sync one tenant (or join the sync already running for it).

        Args:
            tenant_id: The tenant.
            kind: Full sync or refresh.
            job_id: The arq job id (recorded on the run).

        Returns:
            The outcome; a failed sync is recorded and returned with ``state`` failed, not raised.
        """
        requested_at = utcnow()
        async with tenant_lock(self.engine, tenant_id) as free:
            if not free:
                async with self._transaction() as session:
                    for done in await SyncRunRepository(session, tenant_id).latest(finished_after=requested_at):
                        if done.state is SyncState.SUCCEEDED and _covers(done.kind, kind):
                            return SyncOutcome.of(done, joined=True)
            return await self._run_locked(tenant_id, kind, job_id)

    async def _run_locked(self, tenant_id: TenantId, kind: SyncKind, job_id: str | None) -> SyncOutcome:
        now = utcnow()
        async with self._transaction() as session:
            runs = SyncRunRepository(session, tenant_id)
            run = await runs.running()
            if run is not None:
                run.attempts += 1
                run.heartbeat_at = now
                run.job_id = job_id or run.job_id
                if kind is SyncKind.FULL and run.kind is not SyncKind.FULL:
                    run.kind = SyncKind.FULL  # the refresh left unfinished becomes the full sync asked for now
                    run.progress = {}
                log.info("mirror.sync.adopted", run_id=str(run.id), attempts=run.attempts)
            else:
                run = await runs.new_run(kind, now=now, credential_id=None, job_id=job_id)
            try:
                target = await self.resolver(session, tenant_id)
            except Exception as exc:
                run.state, run.finished_at, run.error = SyncState.FAILED, utcnow(), f"no usable credential: {exc}"
                return SyncOutcome.of(run)
            run.credential_id = target.credential_id
            state = _RunState(run.id, run.kind, dict(run.progress), run.requests_used, run.rate_limited,
                              run.server_errors, run.attempts)  # fmt: skip
        tap = RequestTap(on_response=lambda count: self._report(state, count))
        state.tap = tap
        try:
            async with UpstreamSession(target, tap) as upstream:
                fetcher = Fetcher(upstream, page_size=self.options.page_size, concurrency=self.options.concurrency)
                if state.progress.get("stage", "lists") == "lists":
                    await self._lists(tenant_id, state, fetcher, target)
                if state.progress.get("stage") == "statuses":
                    await self._statuses(tenant_id, state, fetcher, target)
        except Exception as exc:
            log.warning("mirror.sync.failed", tenant_id=str(tenant_id), error=str(exc))
            async with self._transaction() as session:
                await _note_credential_state(session, tenant_id, target, exc)
                run = await self._load(session, tenant_id, state)
                run.state, run.finished_at, run.error = SyncState.FAILED, utcnow(), f"{type(exc).__name__}: {exc}"
                return SyncOutcome.of(run, plan=state.plan)
        async with self._transaction() as session:
            run = await self._load(session, tenant_id, state)
            run.state, run.finished_at, run.progress = (
                SyncState.SUCCEEDED,
                utcnow(),
                {**state.progress, "stage": "done"},
            )
            log.info("mirror.sync.succeeded", tenant_id=str(tenant_id), run_id=str(run.id),
                     requests=run.requests_used, planned=run.planned_requests, inserted=run.rows_inserted,
                     updated=run.rows_updated, removed=run.rows_removed)  # fmt: skip
            return SyncOutcome.of(run, plan=state.plan)

    def _report(self, state: _RunState, count: int) -> None:
        if self.on_progress is not None:
            planned = state.plan.requests if state.plan is not None else None
            self.on_progress(SyncProgress(state.phase, count, planned))

    async def _load(self, session: AsyncSession, tenant_id: TenantId, state: _RunState) -> SyncRun:
        """Re-load the run and copy the attempt's counters onto it."""
        run = await SyncRunRepository(session, tenant_id).get(state.run_id)
        if run is None:  # deleted under us (tenant removed): nothing sensible to record
            raise LookupError("sync run disappeared")
        tap = state.tap
        run.requests_used = state.base_requests + (tap.requests if tap else 0)
        run.rate_limited = state.base_rate_limited + (tap.rate_limited if tap else 0)
        run.server_errors = state.base_server_errors + (tap.server_errors if tap else 0)
        run.heartbeat_at = utcnow()
        run.progress = dict(state.progress)
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
        steps = {**plan.steps, "site_status": work["count"]}
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
            state.progress = {
                "stage": "statuses" if work["count"] else "done",
                "seen": counts.seen,
                "seconds": {k: round(v, 3) for k, v in timings.items()},
                "status_work": work,
                "status_done": 0,
            }
            if work["cursor"] is not None and not work["count"]:
                state.progress["status_cursor"] = work["cursor"]
            run.progress = dict(state.progress)
            run.site_status_included = approved

    async def _status_work(
        self,
        session: AsyncSession,
        tenant_id: TenantId,
        discovery: Discovery,
        recent: Sequence[SyncRun],
        *,
        approved: bool,
        spread: int | None,
    ) -> dict[str, Any]:
        """Which site statuses this run checks: ``after`` (start after this site id, round-robin), ``count``,
        ``skip`` (the site discovery already probed) and ``cursor`` (where the previous cycle stopped, found in
        the ``recent`` runs, newest first)."""
        cursor: int | None = None
        for run in recent:
            if isinstance(run.progress.get("status_cursor"), int):
                cursor = run.progress["status_cursor"]
                break
        skip = discovery.site_status_probe.upstream_id if discovery.site_status_probe is not None else None
        if not approved:
            return {"after": None, "count": 0, "skip": skip, "cursor": cursor}
        if discovery.sites is not None and discovery.sites.first.total is not None:
            sites = discovery.sites.first.total
        else:
            sites = len(await MirrorRepository(session, tenant_id).site_ids())
        if spread is None:
            return {"after": None, "count": max(0, sites - (1 if skip is not None else 0)), "skip": skip,
                    "cursor": cursor}  # fmt: skip
        return {"after": cursor, "count": min(sites, -(-sites // max(1, spread))), "skip": None, "cursor": cursor}

    async def _statuses(self, tenant_id: TenantId, state: _RunState, fetcher: Fetcher, target: UpstreamTarget) -> None:
        state.phase = "site_status"
        work: dict[str, Any] = state.progress.get("status_work") or {"after": None, "count": 0, "skip": None}
        async with self._transaction() as session:
            site_ids = [s for s in await MirrorRepository(session, tenant_id).site_ids() if s != work.get("skip")]
        after = work.get("after")
        start = next((i for i, site in enumerate(site_ids) if after is None or site > after), 0)
        ordered = (site_ids[start:] + site_ids[:start])[: work.get("count", 0)]
        done = int(state.progress.get("status_done", 0))
        todo = ordered[done:]
        if state.plan is None:  # adopted at this stage: the rest of the plan is the statuses left
            plan = SyncPlan(len(todo), {"site_status": len(todo)}, await eta_seconds(target.limiter, len(todo)))
            async with self._transaction() as session:
                await self._set_plan(session, tenant_id, state, plan)
        batch = max(1, self.options.status_batch)
        for first in range(0, len(todo), batch):
            chunk = todo[first : first + batch]
            statuses = await fetch_site_statuses(fetcher, chunk)
            now = utcnow()
            async with self._transaction() as session:
                mirror = MirrorRepository(session, tenant_id)
                changed = await mirror.set_site_statuses([(s.upstream_id, s.scheme_status) for s in statuses], now=now)
                done += len(chunk)
                state.progress["status_done"] = done
                if done == len(ordered):
                    state.progress["status_cursor"] = ordered[-1]
                run = await self._load(session, tenant_id, state)
                run.rows_updated += changed
        state.progress["stage"] = "done"


@dataclass
class _RunState:
    """What the attempt carries between its transactions."""

    run_id: uuid.UUID
    kind: SyncKind
    progress: dict[str, Any]
    base_requests: int
    base_rate_limited: int
    base_server_errors: int
    attempts: int
    plan: SyncPlan | None = None
    tap: RequestTap | None = None
    phase: str = "starting"


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
        credential.health = found
        credential.health_message = f"sync refused by GivEnergy: {error}"[:500]
        credential.last_checked_at = utcnow()


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


async def sync_tenant_now(
    resources: Resources,
    tenant: str,
    kind: SyncKind,
    *,
    on_progress: Callable[[SyncProgress], None] | None = None,
    options: SyncOptions | None = None,
) -> tuple[SyncOutcome, dict[str, int]]:
    """Sync a tenant (by slug or id) in this process, as ``givfleet sync`` does; joins a sync already running.

    Returns:
        The outcome, and the mirror's rows per entity afterwards.

    Raises:
        NotFoundError: No such tenant.
    """

    async with resources.session_factory() as session:
        tenants = TenantRepository(session)
        found = await tenants.get_by_slug(tenant)
        if found is None:
            with contextlib.suppress(ValueError):
                found = await tenants.get(tenant_id_from(tenant))
        if found is None:
            raise NotFoundError(f"no tenant {tenant!r}")
        tenant_id = tenant_id_from(found.id)
    runner = SyncRunner(
        resources.engine,
        resources.session_factory,
        resources.upstream.sync_target,
        options or options_from(resources.settings),
        on_progress,
    )
    outcome = await runner.run(tenant_id, kind, job_id="cli")
    async with resources.session_factory() as session:
        counts = await MirrorRepository(session, tenant_id).counts()
    return outcome, counts
