"""The campaign service: create with a plan, read, and every lifecycle action, each checked and audited.

Services take a session and never commit. Every action starts with the policy check (:meth:`CampaignService._allow`)
and records an audit event with its actor in the caller's transaction; the engine's tick is enqueued only after
the commit (:func:`schedule_tick`). Upstream calls (learning the setting catalogue, the limiter's capacity) are
made by :func:`prepare` before the caller's transaction, never inside it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.campaigns import catalogue, lifecycle, planner
from service.campaigns.jobs import schedule_tick
from service.campaigns.schemas import CampaignSpec
from service.campaigns.steps import add_chunks, audit, stop_writing, transition
from service.campaigns.upstream import requests_per_minute
from service.campaigns.waves import MULTI_CONTROL_MAX, chunks
from service.core.clock import utcnow
from service.core.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError, not_in_mirror
from service.core.pagination import Cursor, Page
from service.core.principal import Principal
from service.db.lists import one_of
from service.db.models.campaign import (
    Campaign,
    CampaignKind,
    CampaignState,
    CampaignTarget,
    ChunkKind,
    FirmwareWatch,
    TargetState,
)
from service.db.models.mirror import FleetAccount
from service.db.models.monitoring import Severity
from service.db.models.notifications import NotificationEventType
from service.db.models.tenant import Tenant
from service.mirror.queries import ReadScope
from service.notifications.outbox import record_event
from service.policy import Action, authorize
from service.upstream import Upstream

INSERT_BATCH = 5000

TERMINAL = frozenset({
    TargetState.APPLIED, TargetState.APPLIED_MODIFIED, TargetState.NOT_APPLIED, TargetState.FAILED,
    TargetState.SKIPPED, TargetState.EXCLUDED, TargetState.RECORDED, TargetState.ROLLED_BACK,
    TargetState.ROLLBACK_FAILED, TargetState.CHANGED_SINCE,
})


@dataclass(frozen=True)
class Preparation:
    """What planning needed from outside the database: the catalogue learnt, and the campaign lane's capacity."""

    requests_per_minute: int
    learning: catalogue.Learning


async def prepare(session_factory: async_sessionmaker[AsyncSession], upstream: Upstream, principal: Principal,
                  spec: CampaignSpec) -> Preparation:
    """Learn the setting catalogue of the groups the targets reach and read the lane's capacity.

    Runs before the caller's transaction: one short session to match, then upstream with no session open.
    """
    authorize(principal, Action.CAMPAIGN_CREATE)
    async with session_factory() as session:
        await CampaignService(session, principal).check_new(spec)
        candidates = await planner.match(session, _scope(principal), spec, utcnow())
    samples: dict[catalogue.Group, list[str]] = {}
    for candidate in sorted(candidates, key=lambda c: (c.status or "").upper() == "LOST"):
        samples.setdefault(candidate.group, []).append(candidate.serial)
    learning = await catalogue.learn(session_factory, upstream, principal.tenant_id, samples)
    return Preparation(await requests_per_minute(upstream, principal.tenant_id), learning)


def _scope(principal: Principal) -> ReadScope:
    return ReadScope.of(principal.tenant_id, principal.restricted_account_id)


Owned = TypeVar("Owned", Campaign, FirmwareWatch)
"""What a subtree key sees only when made by a key restricted to the same account (a whole-tenant key sees all)."""


def visible(principal: Principal, model: type[Owned], action: Action) -> list[Any]:
    """Conditions selecting the ``model`` rows ``principal`` may see; checks it may ``action`` first.

    Raises:
        PermissionDeniedError: The principal may not ``action``.
    """
    authorize(principal, action)
    where: list[Any] = [model.tenant_id == principal.tenant_id]
    restricted = _scope(principal).restricted_account_id
    if restricted is not None:
        # A subtree key sees only what a key restricted to the same account made.
        where.append(model.restricted_account_id == restricted)
    return where


async def get_visible(session: AsyncSession, principal: Principal, model: type[Owned], row_id: uuid.UUID,
                      action: Action, *, what: str, lock: bool = False) -> Owned:
    """One visible ``model`` row (locked for update when ``lock``); ``what`` names it in the error.

    Raises:
        NotFoundError: Unknown, another tenant's, or made by a key of another restriction.
    """
    statement = select(model).where(model.id == row_id, *visible(principal, model, action))
    if lock:
        statement = statement.with_for_update()
    row = (await session.execute(statement)).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"{what} not found")
    return row


@dataclass(frozen=True)
class Progress:
    """A campaign's targets counted by state, when its next wave may start, and its expected remaining time."""

    counts: dict[TargetState, int]
    eta_seconds: float | None
    next_step_at: datetime | None = None

    @property
    def done(self) -> int:
        """Targets in a terminal state."""
        return sum(count for state, count in self.counts.items() if state in TERMINAL)

    @property
    def total(self) -> int:
        """Every target (excluded included)."""
        return sum(self.counts.values())


class CampaignService:
    """One tenant's campaigns, for one principal."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.tenant_id = principal.tenant_id

    # --- scope ----------------------------------------------------------------------------------------

    def _visible(self) -> list[Any]:
        return visible(self.principal, Campaign, Action.CAMPAIGN_READ)

    async def check_new(self, spec: CampaignSpec) -> None:
        """What a new campaign must satisfy beyond its own fields: a deadline still ahead, and an account of the
        tenant inside the key's subtree.

        Raises:
            InvalidInputError: The deadline has passed, or the tenant has no such account.
            PermissionDeniedError: ``account_id`` lies outside the key's subtree.
        """
        if spec.deadline is not None and spec.deadline <= utcnow():
            raise InvalidInputError(f"the deadline {spec.deadline.isoformat()} has passed: offline inverters could "
                                    "never be retried", field="deadline")
        await self.check_account(spec.targets.account_id, field="targets.account_id")

    async def check_account(self, account_id: int | None, *, field: str = "account_id") -> None:
        """An account named (``None``: none) must be the tenant's, and a subtree key's must lie inside its subtree.

        Args:
            account_id: The account's upstream id.
            field: Its input field, named by the error.

        Raises:
            InvalidInputError: The tenant's mirror has no account ``account_id``: a typo would target nothing.
            PermissionDeniedError: ``account_id`` lies outside the key's subtree.
        """
        if account_id is None:
            return
        scope = _scope(self.principal)
        where = [FleetAccount.tenant_id == self.tenant_id, FleetAccount.upstream_id == account_id]
        if scope.restricted_account_id is not None:
            where.append(FleetAccount.upstream_id.in_(scope.subtree(scope.restricted_account_id)))
        found = (await self.session.execute(select(func.count()).select_from(FleetAccount).where(*where))
                 ).scalar_one()
        if found:
            return
        if scope.restricted_account_id is not None:
            raise PermissionDeniedError("this key is restricted to an account subtree and can only target "
                                        "inverters inside it")
        raise not_in_mirror("account", account_id, field=field)

    # --- planning -------------------------------------------------------------------------------------

    async def _tenant(self) -> Tenant:
        tenant = await self.session.get(Tenant, self.tenant_id)
        if tenant is None:
            raise NotFoundError("tenant not found")
        return tenant

    async def preview(self, spec: CampaignSpec, preparation: Preparation) -> planner.Plan:
        """The plan of ``spec`` without creating anything (the dry run)."""
        authorize(self.principal, Action.CAMPAIGN_CREATE)
        await self.check_new(spec)
        candidates = await planner.match(self.session, _scope(self.principal), spec, utcnow())
        known = await catalogue.setting_in_groups(self.session, self.tenant_id, spec.setting_id or 0)
        locked = await planner.locked_last_time(self.session, self.tenant_id, [c.serial for c in candidates])
        tenant = await self._tenant()
        return planner.make_plan(
            candidates, spec, catalogue=known, locked=locked,
            approval_threshold=tenant.campaign_approval_threshold,
            requests_per_minute=preparation.requests_per_minute,
            catalogue_requests=preparation.learning.requests, unknown_groups=preparation.learning.failed)

    async def create(self, spec: CampaignSpec, preparation: Preparation) -> tuple[Campaign, planner.Plan]:
        """Create the campaign and plan it (its target set is frozen now).

        Raises:
            ConflictError: An unfinished campaign writes the same setting to some of the same inverters.
            InvalidInputError: Nothing to act on.
        """
        plan = await self.preview(spec, preparation)
        if not plan.view.targets:
            problems = "; ".join(plan.warnings or ["check the targets"])
            raise InvalidInputError(f"no inverter would be acted on: {problems}")
        acting = [t.candidate.serial for t in plan.targets if t.reason is None]
        if spec.kind != "read":
            await self._refuse_conflicts(spec.setting_id or 0, acting)
        campaign = self._new(spec, plan)
        self.session.add(campaign)
        await self.session.flush()
        await audit(self.session, self.principal, campaign, "create", None, CampaignState.DRAFT,
                    {"kind": campaign.kind.value, "setting_id": campaign.setting_id, "value": campaign.value})
        await self._freeze(campaign, plan)
        await transition(self.session, self.principal, campaign, "plan", details={"targets": plan.view.targets,
                                                          "excluded": plan.view.matched - plan.view.targets})
        if plan.view.needs_approval:
            await record_event(self.session, campaign.tenant_id, NotificationEventType.CAMPAIGN_AWAITING_APPROVAL,
                               f"campaign:{campaign.id}:awaiting_approval",
                               f"campaign {campaign.name} awaits approval ({plan.view.targets} inverters)",
                               severity=Severity.MINOR, campaign_id=campaign.id)
        return campaign, plan

    async def _refuse_conflicts(self, setting_id: int, serials: Sequence[str]) -> None:
        # Two creates racing on one setting queue up here; the second sees the first's targets.
        await self.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                                   {"key": f"campaign:{self.tenant_id}:{setting_id}"})
        other = (await self.session.execute(
            select(Campaign.id, Campaign.name, Campaign.state)
            .join(CampaignTarget, CampaignTarget.campaign_id == Campaign.id)
            .where(Campaign.tenant_id == self.tenant_id, Campaign.setting_id == setting_id,
                   Campaign.kind != CampaignKind.READ, Campaign.state.in_(lifecycle.UNFINISHED),
                   CampaignTarget.state != TargetState.EXCLUDED, one_of(CampaignTarget.serial, serials))
            .limit(1))).first()
        if other is not None:
            raise ConflictError(f"campaign {other.name!r} ({other.id}, {other.state.value}) already writes setting "
                                f"{setting_id} to some of these inverters; finish or cancel it first")

    def _new(self, spec: CampaignSpec, plan: planner.Plan) -> Campaign:
        t, window = spec.targets, spec.window
        return Campaign(
            tenant_id=self.tenant_id, name=spec.name, kind=CampaignKind(spec.kind), setting_id=spec.setting_id or 0,
            value=plan.value, state=CampaignState.DRAFT,
            restricted_account_id=_scope(self.principal).restricted_account_id, account_id=t.account_id,
            site_ids=t.site_ids, models=t.models, statuses=t.statuses, firmware_arm_min=t.firmware_arm_min,
            firmware_arm_max=t.firmware_arm_max, firmware_dsp_min=t.firmware_dsp_min,
            firmware_dsp_max=t.firmware_dsp_max, serials=t.serials, excluded_serials=list(t.exclude_serials),
            canary_size=spec.waves.canary_size, growth_factor=spec.waves.growth_factor,
            max_wave_size=spec.waves.max_wave_size, wave_pause_seconds=spec.waves.pause_seconds,
            abort_failure_rate=spec.abort.failure_rate, abort_failure_count=spec.abort.failure_count,
            window_start=window.start if window else None, window_end=window.end if window else None,
            window_weekdays=window.weekdays if window else None, deadline=spec.deadline,
            max_attempts=spec.max_attempts, retry_after_seconds=spec.retry_after_seconds, verify=spec.verify,
            skip_if_set=spec.skip_if_set, created_by=self.principal.actor, created_by_key_id=self.principal.key_id,
            target_count=plan.view.targets, wave_count=len(plan.view.waves), planned_at=utcnow(),
            current_wave=0, tick_seq=0, requests_used=0, rewrites=0)

    async def _freeze(self, campaign: Campaign, plan: planner.Plan) -> None:
        rows = [{"id": uuid.uuid4(), "campaign_id": campaign.id, "tenant_id": self.tenant_id,
                 "serial": t.candidate.serial, "model": t.candidate.model, "firmware_arm": t.candidate.firmware_arm,
                 "status": t.candidate.status, "wave": t.wave, "attempts": 0, "writes": 0,
                 "state": TargetState.EXCLUDED if t.reason else TargetState.PENDING, "reason": t.reason}
                for t in plan.targets]
        for batch in chunks(rows, INSERT_BATCH):
            await self.session.execute(insert(CampaignTarget), batch)

    # --- reads ----------------------------------------------------------------------------------------

    async def get(self, campaign_id: uuid.UUID, *, lock: bool = False) -> Campaign:
        """A visible campaign.

        Raises:
            NotFoundError: Unknown, another tenant's, or outside the key's subtree.
        """
        return await get_visible(self.session, self.principal, Campaign, campaign_id, Action.CAMPAIGN_READ,
                                 what="campaign", lock=lock)

    async def list(self, *, state: CampaignState | None = None, limit: int = 50) -> Sequence[Campaign]:
        """The newest campaigns."""
        statement = select(Campaign).where(*self._visible()).order_by(Campaign.created_at.desc(), Campaign.id)
        if state is not None:
            statement = statement.where(Campaign.state == state)
        return (await self.session.execute(statement.limit(limit))).scalars().all()

    async def progress(self, campaign: Campaign, requests_per_minute: int | None = None) -> Progress:
        """Targets by state, and (given the lane's capacity) the expected remaining time."""
        rows = await self.session.execute(
            select(CampaignTarget.state, func.count()).where(CampaignTarget.campaign_id == campaign.id)
            .group_by(CampaignTarget.state))
        counts = {state: count for state, count in rows.all()}
        # Set between waves while running: the wave pause, the retry delay of offline inverters, or the window.
        waiting_until = campaign.next_step_at if campaign.state is CampaignState.RUNNING else None
        eta = None
        if requests_per_minute:
            left = sum(count for state, count in counts.items() if state not in TERMINAL)
            per_inverter = 1 if campaign.kind is not CampaignKind.WRITE else (3 if campaign.verify else 2)
            eta = -(-left // MULTI_CONTROL_MAX) * per_inverter / requests_per_minute * 60
            if waiting_until is not None:
                eta += max(0.0, (waiting_until - utcnow()).total_seconds())
            eta = round(eta, 1)
        return Progress(counts, eta, waiting_until)

    async def targets(self, campaign_id: uuid.UUID, *, states: Sequence[TargetState] | None = None,
                      first: int = 50, after: str | None = None) -> Page[CampaignTarget]:
        """A page of a campaign's targets by serial, optionally only in ``states``."""
        campaign = await self.get(campaign_id)
        where: list[Any] = [CampaignTarget.campaign_id == campaign.id]
        if states:
            where.append(CampaignTarget.state.in_(states))
        kind = f"CampaignTarget.serial.{','.join(sorted(s.value for s in states or []))}"
        statement = select(CampaignTarget).where(*where)
        if after is not None:
            cursor = Cursor.decode(after, sort=kind)
            statement = statement.where(CampaignTarget.serial > str(cursor.value))
        rows = (await self.session.execute(statement.order_by(CampaignTarget.serial).limit(first + 1))).scalars().all()
        total = (await self.session.execute(
            select(func.count()).select_from(CampaignTarget).where(*where))).scalar_one()
        items = list(rows[:first])
        return Page(items=items, cursors=[Cursor(kind, row.serial, row.id).encode() for row in items],
                    has_next_page=len(rows) > first, total_count=total)

    # --- actions --------------------------------------------------------------------------------------

    async def approve(self, campaign_id: uuid.UUID) -> Campaign:
        """An admin of another key approves a campaign above the tenant's threshold."""
        authorize(self.principal, Action.CAMPAIGN_APPROVE)
        campaign = await self.get(campaign_id, lock=True)
        same_key = self.principal.key_id is not None and self.principal.key_id == campaign.created_by_key_id
        same_actor = self.principal.key_id is None and self.principal.actor == campaign.created_by
        if same_key or same_actor:
            raise PermissionDeniedError("a campaign must be approved by a different key than the one that created it")
        campaign.approved_by = self.principal.actor
        campaign.approved_by_key_id = self.principal.key_id
        await transition(self.session, self.principal, campaign, "approve")
        return campaign

    async def start(self, campaign_id: uuid.UUID) -> Campaign:
        """Start a planned (or approved) campaign."""
        authorize(self.principal, Action.CAMPAIGN_START)
        campaign = await self.get(campaign_id, lock=True)
        tenant = await self._tenant()
        if (campaign.state is CampaignState.PLANNED
                and campaign.target_count > tenant.campaign_approval_threshold):
            raise ConflictError(f"this campaign targets {campaign.target_count} inverters, more than the tenant's "
                                f"approval threshold ({tenant.campaign_approval_threshold}): an admin with another "
                                "key must approve it first")
        await transition(self.session, self.principal, campaign, "start")
        campaign.started_at = utcnow()
        schedule_tick(self.session, campaign)
        return campaign

    async def pause(self, campaign_id: uuid.UUID) -> Campaign:
        """Pause: takes effect before the next chunk (one in flight is recorded)."""
        authorize(self.principal, Action.CAMPAIGN_PAUSE)
        campaign = await self.get(campaign_id, lock=True)
        await transition(self.session, self.principal, campaign, "pause")
        return campaign

    async def resume(self, campaign_id: uuid.UUID) -> Campaign:
        """Resume a paused campaign."""
        authorize(self.principal, Action.CAMPAIGN_RESUME)
        campaign = await self.get(campaign_id, lock=True)
        await transition(self.session, self.principal, campaign, "resume")
        schedule_tick(self.session, campaign)
        return campaign

    async def cancel(self, campaign_id: uuid.UUID) -> Campaign:
        """Stop: nothing more is written; what was written is still read back; what was applied stays."""
        authorize(self.principal, Action.CAMPAIGN_CANCEL)
        campaign = await self.get(campaign_id, lock=True)
        was_running = campaign.state in (CampaignState.RUNNING, CampaignState.PAUSED)
        await transition(self.session, self.principal, campaign, "cancel")
        await stop_writing(self.session, campaign, "cancelled")
        campaign.finished_at = utcnow()
        if was_running:
            schedule_tick(self.session, campaign)
        return campaign

    async def rollback(self, campaign_id: uuid.UUID) -> Campaign:
        """Put back each inverter's own previous value, where the campaign's value is still the one stored."""
        authorize(self.principal, Action.CAMPAIGN_ROLLBACK)
        campaign = await self.get(campaign_id, lock=True)
        if campaign.kind is not CampaignKind.WRITE:
            raise ConflictError(f"a {campaign.kind.value} campaign changed no setting value: nothing to roll back")
        busy = (await self.session.execute(
            select(func.count()).select_from(CampaignTarget).where(
                CampaignTarget.campaign_id == campaign.id,
                CampaignTarget.state.in_([TargetState.WRITING, TargetState.WRITTEN, TargetState.UNVERIFIED])))
        ).scalar_one()
        if busy:
            raise ConflictError(f"{busy} inverters are still being read back; roll back once they are settled")
        await transition(self.session, self.principal, campaign, "rollback")
        await self.session.execute(
            update(CampaignTarget)
            .where(CampaignTarget.campaign_id == campaign.id,
                   CampaignTarget.state.in_([TargetState.APPLIED, TargetState.APPLIED_MODIFIED]),
                   CampaignTarget.previous_value.is_not(None))
            .values(state=TargetState.ROLLBACK_PENDING, reason=None, code=None, attempts=0, updated_at=utcnow()))
        serials = (await self.session.execute(
            select(CampaignTarget.serial).where(CampaignTarget.campaign_id == campaign.id,
                                                CampaignTarget.state == TargetState.ROLLBACK_PENDING)
            .order_by(CampaignTarget.serial))).scalars().all()
        await add_chunks(self.session, campaign, ChunkKind.ROLLBACK_READ, list(serials), wave=campaign.current_wave + 1)
        schedule_tick(self.session, campaign)
        return campaign


LifecycleAction = Callable[[CampaignService, uuid.UUID], Awaitable[Campaign]]
"""A lifecycle method of the campaign service (``CampaignService.start``, ``.pause`` ...): what the REST, GraphQL and
CLI actions run."""


async def history(session: AsyncSession, scope: ReadScope, serials: Sequence[str]
                  ) -> list[tuple[Campaign, CampaignTarget]]:
    """What campaigns did to these inverters (one statement), newest campaign first. A subtree scope sees only
    campaigns made by a key restricted to the same account."""
    where: list[Any] = [Campaign.tenant_id == scope.tenant_id, one_of(CampaignTarget.serial, serials)]
    if scope.restricted_account_id is not None:
        where.append(Campaign.restricted_account_id == scope.restricted_account_id)
    rows = await session.execute(
        select(Campaign, CampaignTarget).join(CampaignTarget, CampaignTarget.campaign_id == Campaign.id)
        .where(*where).order_by(Campaign.created_at.desc(), Campaign.id))
    return [(row[0], row[1]) for row in rows.all()]
