"""Firmware watches: a cohort (one model, an ARM firmware range, optionally an account subtree) followed towards a
target ARM version, from what the mirror already knows.

The v1 API shows firmware versions and an ``UPDATING`` status but cannot push firmware, so a watch only
observes: its members are frozen when it is created (an inverter that updates leaves the firmware range but stays
in the cohort), and each member's progress is read from the mirror whenever it is asked for:

- ``at_target``: its ARM firmware is the target or newer (since the mirror last saw its firmware change);
- ``updating``: status ``UPDATING`` (since the mirror first saw that status);
- ``behind``: neither (since the watch started);
- ``removed``: gone from the fleet upstream (since the mirror saw it go).

A member still ``behind`` once ``straggler_days`` have passed since the watch started is a straggler (one that is
``updating`` is moving, and a restart mid-update is what nobody wants). :meth:`FirmwareWatchService.restart_stragglers`
makes a ``restart`` campaign targeted at exactly the stragglers through :class:`CampaignService`, so its policy,
approval threshold, exclusions and conflict refusal all apply; the campaign is planned, never started.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from sqlalchemy import ColumnElement, SQLColumnExpression, and_, case, false, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.campaigns import planner
from service.campaigns.schemas import MAX_LISTED_SERIALS, CampaignSpec, ModelName, TargetSpec
from service.campaigns.service import INSERT_BATCH, CampaignService, Preparation, get_visible, prepare, visible
from service.campaigns.waves import chunks
from service.core.clock import utcnow
from service.core.errors import ConflictError, InvalidInputError, InvalidParameterError
from service.core.limits import UpstreamId
from service.core.pagination import Cursor, Page
from service.core.principal import Principal
from service.core.text import Name
from service.db.lists import one_of
from service.db.models.campaign import Campaign, FirmwareWatch, FirmwareWatchMember
from service.db.models.mirror import Inverter, InverterChange
from service.mirror import queries as q
from service.mirror.schemas import InverterChangeKind
from service.policy import Action, authorize
from service.tenants.service import AuditService
from service.upstream import Upstream

MEMBER_STATES = ("at_target", "updating", "behind", "removed")
_SAME_INVERTER = and_(Inverter.tenant_id == FirmwareWatchMember.tenant_id,
                      Inverter.serial == FirmwareWatchMember.serial)


class WatchSpec(BaseModel):
    """A firmware watch as its author writes it."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    model: ModelName = Field(description="The cohort's model, e.g. \"GIV-HY5.0\".")
    firmware_arm_min: int | None = Field(default=None, ge=0, le=2**31 - 1,
                                         description="The cohort's ARM firmware at least this.")
    firmware_arm_max: int | None = Field(default=None, ge=0, le=2**31 - 1,
                                         description="The cohort's ARM firmware at most this.")
    account_id: UpstreamId | None = Field(default=None,
                                          description="Only inverters in this account's subtree (upstream id).")
    target_firmware_arm: int = Field(ge=0, le=2**31 - 1, description="The ARM firmware version to reach.")
    straggler_days: int = Field(default=7, ge=0, le=3650,
                                description="A member still behind this many days after the start is a straggler.")

    @field_validator("target_firmware_arm")
    @classmethod
    def _above_range(cls, target: int, info: ValidationInfo) -> int:
        low, high = info.data.get("firmware_arm_min"), info.data.get("firmware_arm_max")
        if low is not None and high is not None and low > high:  # an inverted range: the model validator says so
            return target
        if low is not None and target <= low:
            raise ValueError(f"must be above firmware_arm_min ({low}): every member would be at the target from "
                             "the start")
        return target

    @model_validator(mode="after")
    def _range(self) -> WatchSpec:
        low, high = self.firmware_arm_min, self.firmware_arm_max
        if low is not None and high is not None and low > high:
            raise ValueError("firmware_arm_min must not exceed firmware_arm_max")
        return self


class WatchView(BaseModel):
    """A firmware watch and its cohort's progress."""

    id: uuid.UUID
    name: str
    model: str
    firmware_arm_min: int | None
    firmware_arm_max: int | None
    account_id: int | None
    target_firmware_arm: int
    straggler_days: int
    started_at: datetime
    stragglers_from: datetime = Field(description="From then on, members still behind are stragglers.")
    member_count: int = Field(description="Inverters frozen into the cohort when the watch started.")
    counts: dict[str, int] = Field(description="Members per state (at_target, updating, behind, removed).")
    stragglers: int
    created_by: str
    created_at: datetime
    last_restart_campaign_id: uuid.UUID | None


class MemberView(BaseModel):
    """One inverter of a watch's cohort and where it stands."""

    serial: str
    firmware_arm_at_start: str | None
    firmware_arm: str | None = Field(description="As the mirror last saw it.")
    status: str | None
    state: str = Field(description="at_target, updating, behind or removed.")
    since: datetime | None = Field(description="Since when it is in this state, as far as the mirror knows.")
    straggler: bool


@dataclass(frozen=True)
class Member:
    """A member row joined with its inverter's mirror state."""

    id: uuid.UUID
    serial: str
    firmware_arm_at_start: str | None
    firmware_arm: str | None
    status: str | None
    state: str
    since: datetime | None
    straggler: bool


def _conditions(target_firmware_arm: SQLColumnExpression[int]) -> tuple[ColumnElement[bool], ColumnElement[bool],
                                                                  ColumnElement[bool]]:
    """Whether a member (joined with its inverter) is removed, at the target, updating."""
    return (Inverter.removed_at.is_not(None), q.numeric_version(Inverter.firmware_arm) >= target_firmware_arm,
            func.upper(func.coalesce(Inverter.status, "")) == "UPDATING")


def _state(target_firmware_arm: SQLColumnExpression[int]) -> ColumnElement[str]:
    """A member's state (one of :data:`MEMBER_STATES`), the first that holds."""
    removed, at_target, updating = _conditions(target_firmware_arm)
    return case((removed, literal("removed")), (at_target, literal("at_target")),
                (updating, literal("updating")), else_=literal("behind"))


@dataclass(frozen=True)
class Progress:
    """Members per state and the stragglers among them."""

    counts: dict[str, int]
    stragglers: int


def _straggling(watch: FirmwareWatch, now: datetime) -> bool:
    """Whether the watch has run long enough for members still behind to be stragglers."""
    return now >= watch.started_at + timedelta(days=watch.straggler_days)


def _watch_view(watch: FirmwareWatch, progress: Progress) -> WatchView:
    """A watch with its progress."""
    return WatchView(
        id=watch.id, name=watch.name, model=watch.model, firmware_arm_min=watch.firmware_arm_min,
        firmware_arm_max=watch.firmware_arm_max, account_id=watch.account_id,
        target_firmware_arm=watch.target_firmware_arm, straggler_days=watch.straggler_days,
        started_at=watch.started_at, stragglers_from=watch.started_at + timedelta(days=watch.straggler_days),
        member_count=watch.member_count, counts=progress.counts, stragglers=progress.stragglers,
        created_by=watch.created_by, created_at=watch.created_at,
        last_restart_campaign_id=watch.last_restart_campaign_id)


def member_view(member: Member) -> MemberView:
    """One member."""
    return MemberView(serial=member.serial, firmware_arm_at_start=member.firmware_arm_at_start,
                      firmware_arm=member.firmware_arm, status=member.status, state=member.state,
                      since=member.since, straggler=member.straggler)


class FirmwareWatchService:
    """One tenant's firmware watches, for one principal; ``clock`` is "now" (the simulator's in tests)."""

    def __init__(self, session: AsyncSession, principal: Principal,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.session = session
        self.principal = principal
        self.tenant_id = principal.tenant_id
        self.scope = q.ReadScope.of(principal.tenant_id, principal.restricted_account_id)
        self.clock = clock

    async def create(self, spec: WatchSpec) -> FirmwareWatch:
        """Freeze the cohort (in the caller's scope) and start watching it.

        Raises:
            PermissionDeniedError: The role is too low, or ``account_id`` is outside the key's subtree.
            InvalidInputError: No inverter matches the cohort.
        """
        authorize(self.principal, Action.FIRMWARE_WATCH_CREATE)
        await CampaignService(self.session, self.principal).check_account(spec.account_id)
        now = self.clock()
        cohort = q.InverterFilter(model_in=[spec.model], firmware_arm_min=spec.firmware_arm_min,
                                  firmware_arm_max=spec.firmware_arm_max, account_id=spec.account_id)
        rows = (await self.session.execute(
            select(Inverter.serial, Inverter.firmware_arm).where(*cohort.conditions(self.scope, now))
            .order_by(Inverter.serial))).all()
        if not rows:
            raise InvalidInputError("no inverter you can see matches this cohort (model, firmware range, account)")
        watch = FirmwareWatch(
            tenant_id=self.tenant_id, name=spec.name, model=spec.model, firmware_arm_min=spec.firmware_arm_min,
            firmware_arm_max=spec.firmware_arm_max, account_id=spec.account_id,
            target_firmware_arm=spec.target_firmware_arm, straggler_days=spec.straggler_days,
            restricted_account_id=self.scope.restricted_account_id, started_at=now, member_count=len(rows),
            created_by=self.principal.actor, created_by_key_id=self.principal.key_id)
        self.session.add(watch)
        await self.session.flush()
        members = [{"id": uuid.uuid4(), "watch_id": watch.id, "tenant_id": self.tenant_id, "serial": serial,
                    "firmware_arm_at_start": firmware} for serial, firmware in rows]
        for batch in chunks(members, INSERT_BATCH):
            await self.session.execute(insert(FirmwareWatchMember), batch)
        await AuditService(self.session).record(
            self.principal, Action.FIRMWARE_WATCH_CREATE.rule.name, target_type="firmware_watch",
            target_id=watch.id, details={**spec.model_dump(), "members": len(rows)})
        return watch

    async def get(self, watch_id: uuid.UUID, *, lock: bool = False) -> FirmwareWatch:
        """A visible watch.

        Raises:
            NotFoundError: Unknown, another tenant's, or made by a key of another restriction.
        """
        return await get_visible(self.session, self.principal, FirmwareWatch, watch_id, Action.FIRMWARE_WATCH_READ,
                                 what="firmware watch", lock=lock)

    async def list(self, *, limit: int = 50) -> Sequence[FirmwareWatch]:
        """The newest watches."""
        statement = (select(FirmwareWatch).where(*visible(self.principal, FirmwareWatch, Action.FIRMWARE_WATCH_READ))
                     .order_by(FirmwareWatch.created_at.desc(), FirmwareWatch.id).limit(limit))
        return (await self.session.execute(statement)).scalars().all()

    # --- progress -------------------------------------------------------------------------------------

    def _members(self, watch: FirmwareWatch) -> tuple[Sequence[ColumnElement[bool]], ColumnElement[str],
                                                       ColumnElement[datetime]]:
        """The conditions selecting ``watch``'s members visible to the caller (over members joined with their
        inverters), their state and since when."""
        joined: list[ColumnElement[bool]] = [FirmwareWatchMember.watch_id == watch.id, *self.scope.visible(Inverter)]
        removed, at_target, updating = _conditions(literal(watch.target_firmware_arm))
        state = _state(literal(watch.target_firmware_arm))
        changed = (select(func.max(InverterChange.observed_at))
                   .where(InverterChange.tenant_id == Inverter.tenant_id,
                          InverterChange.inverter_serial == Inverter.serial,
                          InverterChange.kind == InverterChangeKind.FIRMWARE_ARM)
                   .scalar_subquery())
        since = case((removed, Inverter.removed_at), (at_target, changed), (updating, Inverter.status_since),
                     else_=literal(watch.started_at))
        return joined, state, since

    async def views(self, watches: Sequence[FirmwareWatch]) -> builtins.list[WatchView]:
        """``watches`` with their progress: members per state and how many are stragglers (one statement)."""
        if not watches:
            return []
        state = _state(FirmwareWatch.target_firmware_arm)
        rows = (await self.session.execute(
            select(FirmwareWatchMember.watch_id, state, func.count()).select_from(FirmwareWatchMember)
            .join(Inverter, _SAME_INVERTER).join(FirmwareWatch, FirmwareWatch.id == FirmwareWatchMember.watch_id)
            .where(one_of(FirmwareWatchMember.watch_id, [watch.id for watch in watches]),
                   *self.scope.visible(Inverter))
            .group_by(FirmwareWatchMember.watch_id, state))).all()
        counts = {watch.id: dict.fromkeys(MEMBER_STATES, 0) for watch in watches}
        for watch_id, name, count in rows:
            counts[watch_id][name] = count
        now = self.clock()
        return [_watch_view(watch, Progress(counts[watch.id], counts[watch.id]["behind"]
                                            if _straggling(watch, now) else 0))
                for watch in watches]

    async def view(self, watch: FirmwareWatch) -> WatchView:
        """``watch`` with its progress."""
        return (await self.views([watch]))[0]

    async def members(self, watch_id: uuid.UUID, *, states: Sequence[str] | None = None,
                      stragglers_only: bool = False, first: int = 50, after: str | None = None) -> Page[Member]:
        """A page of a watch's members by serial, optionally only in ``states`` or only the stragglers.

        Raises:
            InvalidParameterError: An unknown state.
        """
        unknown = sorted(set(states or []) - set(MEMBER_STATES))
        if unknown:
            raise InvalidParameterError(f"unknown member state(s) {', '.join(unknown)}; one of "
                                        f"{', '.join(MEMBER_STATES)}", parameter="state", allowed=[*MEMBER_STATES])
        watch = await self.get(watch_id)
        straggling = _straggling(watch, self.clock())
        joined, state, since = self._members(watch)
        where: list[ColumnElement[bool]] = [*joined]
        if states:
            where.append(state.in_(list(states)))
        if stragglers_only:
            where.append(state == "behind" if straggling else false())
        kind = f"FirmwareWatchMember.serial.{','.join(sorted(states or []))}.{int(stragglers_only)}"
        statement = (select(FirmwareWatchMember.id, FirmwareWatchMember.serial,
                            FirmwareWatchMember.firmware_arm_at_start, Inverter.firmware_arm, Inverter.status,
                            state, since)
                     .select_from(FirmwareWatchMember).join(Inverter, _SAME_INVERTER).where(*where))
        if after is not None:
            cursor = Cursor.decode(after, sort=kind)
            statement = statement.where(FirmwareWatchMember.serial > str(cursor.value))
        rows = (await self.session.execute(
            statement.order_by(FirmwareWatchMember.serial).limit(first + 1))).all()
        total = (await self.session.execute(
            select(func.count()).select_from(FirmwareWatchMember).join(Inverter, _SAME_INVERTER)
            .where(*where))).scalar_one()
        items = [Member(*row, straggler=straggling and row[5] == "behind") for row in rows[:first]]
        return Page(items=items, cursors=[Cursor(kind, item.serial, item.id).encode() for item in items],
                    has_next_page=len(rows) > first, total_count=total)

    async def straggler_serials(self, watch: FirmwareWatch) -> Sequence[str]:
        """The stragglers (members still behind once ``straggler_days`` have passed), by serial."""
        if not _straggling(watch, self.clock()):
            return []
        joined, state, _ = self._members(watch)
        return (await self.session.execute(
            select(FirmwareWatchMember.serial).select_from(FirmwareWatchMember)
            .join(Inverter, _SAME_INVERTER).where(*joined, state == "behind")
            .order_by(FirmwareWatchMember.serial))).scalars().all()

    # --- restart --------------------------------------------------------------------------------------

    async def restart_spec(self, watch_id: uuid.UUID) -> CampaignSpec:
        """The restart campaign of the watch's stragglers as they are now.

        Raises:
            ConflictError: No stragglers (not yet ``straggler_days`` since the start, or none behind).
        """
        authorize(self.principal, Action.FIRMWARE_WATCH_RESTART)
        watch = await self.get(watch_id)
        serials = await self.straggler_serials(watch)
        if not serials:
            when = watch.started_at + timedelta(days=watch.straggler_days)
            why = (f"members count as stragglers from {when.isoformat()}" if when > self.clock()
                   else "no member is behind")
            raise ConflictError(f"firmware watch {watch.name!r} has no stragglers to restart: {why}")
        if len(serials) > MAX_LISTED_SERIALS:
            raise ConflictError(f"{len(serials)} stragglers are more than one campaign lists ({MAX_LISTED_SERIALS}): "
                                "watch smaller cohorts (by firmware range or account)")
        return CampaignSpec(name=f"{watch.name}: restart stragglers"[:200], kind="restart",
                            targets=TargetSpec(serials=[*serials]))

    async def restart_stragglers(self, watch_id: uuid.UUID, preparation: Preparation
                                 ) -> tuple[Campaign, planner.Plan]:
        """Create (and plan) a ``restart`` campaign targeted at exactly the stragglers, through the campaign
        service (policy, exclusions, approval threshold and conflicts apply); it is not started.

        Raises:
            ConflictError: No stragglers, or an unfinished campaign already restarts some of them.
        """
        authorize(self.principal, Action.FIRMWARE_WATCH_RESTART)
        watch = await self.get(watch_id, lock=True)  # one restart of a watch at a time
        spec = await self.restart_spec(watch_id)
        campaign, plan = await CampaignService(self.session, self.principal).create(spec, preparation)
        watch.last_restart_campaign_id = campaign.id
        await AuditService(self.session).record(
            self.principal, Action.FIRMWARE_WATCH_RESTART.rule.name, target_type="firmware_watch",
            target_id=watch.id, details={"campaign_id": str(campaign.id),
                                         "stragglers": len(spec.targets.serials or [])})
        return campaign, plan


async def prepare_restart(session_factory: async_sessionmaker[AsyncSession], upstream: Upstream,
                          principal: Principal, watch_id: uuid.UUID,
                          clock: Callable[[], datetime] = utcnow) -> Preparation:
    """What the restart campaign's plan needs from upstream, before the caller's transaction (see
    :func:`service.campaigns.service.prepare`)."""
    async with session_factory() as session:
        spec = await FirmwareWatchService(session, principal, clock).restart_spec(watch_id)
    return await prepare(session_factory, upstream, principal, spec)
