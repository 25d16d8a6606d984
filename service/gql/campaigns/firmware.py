# mypy: disable-error-code="untyped-decorator"
# (strawberry.field(description=...) is typed as returning Any)
"""GraphQL for firmware watches: ``firmwareWatch`` / ``firmwareWatches`` with progress and a members connection,
and the mutations ``createFirmwareWatch`` and ``restartFirmwareWatchStragglers`` (the
:mod:`service.gql.mutation` convention)."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from service.campaigns.firmware import (
    FirmwareWatchService,
    Member,
    MemberView,
    WatchSpec,
    WatchView,
    member_view,
    prepare_restart,
)
from service.core.limits import DEFAULT_PAGE_SIZE, page_size
from service.db.uow import UnitOfWork
from service.gql.campaigns.mutations import CreateCampaignPayload, created
from service.gql.campaigns.types import StateCount
from service.gql.context import Info
from service.gql.mutation import MutationPayload, fields_on, parse_id, resources_of, validated
from service.gql.types.connection import Connection


@strawberry.type(description="How many members of a firmware watch are in one state.")
class FirmwareWatchStateCount(StateCount):
    pass


@strawberry.type(description="One inverter of a firmware watch's cohort and where it stands.")
class FirmwareWatchMember:
    serial: str
    firmware_arm_at_start: str | None = strawberry.field(description="ARM firmware when the watch started.")
    firmware_arm: str | None = strawberry.field(description="ARM firmware as the mirror last saw it.")
    status: str | None
    state: str = strawberry.field(description="at_target, updating, behind or removed.")
    since: datetime | None = strawberry.field(description="Since when it is in this state, as far as the mirror "
                                                          "knows.")
    straggler: bool = strawberry.field(description="Still behind once the watch's stragglerDays have passed.")

    @classmethod
    def of(cls, view: MemberView) -> FirmwareWatchMember:
        return cls(**view.model_dump())


@strawberry.type(description="A firmware cohort (model, ARM firmware range, optionally an account subtree) "
                             "followed towards a target ARM version.")
class FirmwareWatch:
    id: strawberry.ID = strawberry.field(description="The watch's id (a UUID).")
    name: str
    model: str
    firmware_arm_min: int | None
    firmware_arm_max: int | None
    account_id: int | None = strawberry.field(description="The cohort's account subtree (upstream id), if any.")
    target_firmware_arm: int
    straggler_days: int
    started_at: datetime
    stragglers_from: datetime = strawberry.field(description="From then on, members still behind are stragglers.")
    member_count: int = strawberry.field(description="Inverters frozen into the cohort when the watch started.")
    counts: list[FirmwareWatchStateCount] = strawberry.field(description="Members per state.")
    stragglers: int
    created_by: str
    created_at: datetime
    last_restart_campaign_id: strawberry.ID | None = strawberry.field(
        description="The newest restart campaign made for its stragglers.")

    @classmethod
    def of(cls, view: WatchView) -> FirmwareWatch:
        fields = view.model_dump(exclude={"id", "counts", "last_restart_campaign_id"})
        restart = view.last_restart_campaign_id
        return cls(id=strawberry.ID(str(view.id)), **fields,
                   counts=FirmwareWatchStateCount.each(view.counts),
                   last_restart_campaign_id=strawberry.ID(str(restart)) if restart else None)

    @strawberry.field(description="The cohort's inverters by serial, optionally only in some states (at_target, "
                                  "updating, behind, removed) or only the stragglers.")
    async def members(self, info: Info, states: list[str] | None = None, stragglers_only: bool = False,
                      first: int | None = None, after: str | None = None) -> Connection[FirmwareWatchMember]:
        async with info.context.session_factory() as session:
            page = await FirmwareWatchService(session, info.context.principal).members(
                uuid.UUID(str(self.id)), states=states, stragglers_only=stragglers_only,
                first=page_size(first, parameter="first"), after=after)

        def node(member: Member) -> FirmwareWatchMember:
            return FirmwareWatchMember.of(member_view(member))

        return Connection[FirmwareWatchMember].of(page, node, after=after)


@strawberry.type
class FirmwareWatchQuery:
    @strawberry.field(description="A firmware watch by id, with its members per state and its stragglers.")
    async def firmware_watch(self, info: Info, id: strawberry.ID) -> FirmwareWatch:
        async with info.context.session_factory() as session:
            service = FirmwareWatchService(session, info.context.principal)
            return FirmwareWatch.of(await service.view(await service.get(parse_id(id))))

    @strawberry.field(description="The newest firmware watches (a subtree key sees only those made by keys "
                                  "restricted to the same account).")
    async def firmware_watches(self, info: Info, first: int = DEFAULT_PAGE_SIZE) -> list[FirmwareWatch]:
        async with info.context.session_factory() as session:
            service = FirmwareWatchService(session, info.context.principal)
            watches = await service.list(limit=page_size(first, parameter="first"))
            return [FirmwareWatch.of(view) for view in await service.views(watches)]


@strawberry.input(description="A firmware watch: the cohort, the target and when a member becomes a straggler.")
class FirmwareWatchInput:
    name: str
    model: str = strawberry.field(description="The cohort's model, e.g. \"GIV-HY5.0\".")
    target_firmware_arm: int = strawberry.field(description="The ARM firmware version to reach.")
    firmware_arm_min: int | None = strawberry.field(default=None, description="The cohort's ARM firmware at least "
                                                                              "this.")
    firmware_arm_max: int | None = strawberry.field(default=None, description="The cohort's ARM firmware at most "
                                                                              "this.")
    account_id: int | None = strawberry.field(default=None, description="Only inverters in this account's subtree "
                                                                        "(upstream id).")
    straggler_days: int = strawberry.field(default=7, description="A member still behind this many days after "
                                                                  "the start is a straggler.")


@strawberry.type(description="The created firmware watch.")
class FirmwareWatchPayload(MutationPayload):
    firmware_watch: FirmwareWatch | None = None


@strawberry.type
class FirmwareWatchMutation:
    @strawberry.mutation(description="Start watching a cohort; its members are frozen now (operator).")
    async def create_firmware_watch(self, info: Info, input: FirmwareWatchInput) -> FirmwareWatchPayload:
        async def work(session: UnitOfWork) -> FirmwareWatchPayload:
            service = FirmwareWatchService(session, info.context.principal)
            with fields_on(input):
                watch = await service.view(await service.create(validated(WatchSpec, input)))
            return FirmwareWatchPayload(firmware_watch=FirmwareWatch.of(watch))

        return await FirmwareWatchPayload.of_work(info, work)

    @strawberry.mutation(description="Create a restart campaign targeted at exactly the watch's stragglers, planned "
                                     "and not started; the campaign rules apply (operator).")
    async def restart_firmware_watch_stragglers(self, info: Info, id: strawberry.ID) -> CreateCampaignPayload:
        async def work() -> CreateCampaignPayload:
            resources = resources_of(info)
            watch_id, principal = parse_id(id), info.context.principal
            preparation = await prepare_restart(resources.session_factory, resources.upstream, principal, watch_id)
            return await created(info, lambda session: FirmwareWatchService(session, principal).restart_stragglers(
                watch_id, preparation))

        return await CreateCampaignPayload.of_attempt(work())
