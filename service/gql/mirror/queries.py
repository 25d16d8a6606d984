# mypy: disable-error-code="untyped-decorator"
# (strawberry.field(description=...) is typed as returning Any)
"""Root query fields over the mirror: lookups, filtered connections, ``fleetSummary`` and ``node``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import strawberry

from service.core import limits
from service.core.errors import found
from service.core.limits import page_size
from service.core.pagination import Page
from service.db.models import mirror as m
from service.gql.context import Info
from service.gql.mirror.filters import AccountFilter, DongleFilter, InverterFilter, SiteFilter
from service.gql.mirror.summary import FleetSummary
from service.gql.mirror.types import (
    Account,
    BatteryModule,
    Dongle,
    Inverter,
    InverterChange,
    Meter,
    Site,
    SyncRun,
)
from service.gql.types.common import Node, from_global_id
from service.gql.types.connection import Connection
from service.mirror.queries import (
    MODELS,
    AccountSort,
    DongleSort,
    FleetReader,
    InverterSort,
    SiteSort,
    SortDirection,
    SortKey,
)
from service.policy import Action, authorize

_CONVERTERS: dict[str, Callable[[Any], Node]] = {
    "Account": Account.from_row, "Site": Site.from_row, "Dongle": Dongle.from_row, "Inverter": Inverter.from_row,
    "BatteryModule": BatteryModule.from_row, "Meter": Meter.from_row, "InverterChange": InverterChange.from_row,
    "SyncRun": SyncRun.from_row,
}
First = Annotated[int | None, strawberry.argument(description="Page size (default 50, at most 500).")]
After = Annotated[str | None, strawberry.argument(
    description="Cursor of the row to continue after (`pageInfo.endCursor`).")]

_Criteria = TypeVar("_Criteria")
_Sort = TypeVar("_Sort", bound=SortKey)
_Row = TypeVar("_Row")
ReadPage = Callable[[FleetReader, _Criteria, _Sort, SortDirection, int, str | None], Awaitable[Page[_Row]]]
"""A :class:`FleetReader` method reading one page of rows: (criteria, ordering, direction, first, after)."""


async def _connection(info: Info, read: ReadPage[_Criteria, _Sort, _Row], criteria: _Criteria, sort: _Sort,
                      direction: SortDirection, first: int | None, after: str | None,
                      node_of: Callable[[_Row], Any]) -> Connection[Any]:
    """One page of a root connection: what ``read`` (a :class:`FleetReader` method) finds for ``criteria`` in the
    ``sort`` order, each row made a node by ``node_of`` (``first`` and ``after`` as the client gave them)."""
    async with info.context.reader() as reader:
        page = await read(reader, criteria, sort, direction, page_size(first, parameter="first"), after)
    return Connection.of(page, node_of, after=after)


@strawberry.type
class MirrorQuery:
    @strawberry.field(description="Any object by its global id; a malformed or foreign id is not found.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        type_name, row_id = from_global_id(id)
        model = found(MODELS.get(type_name), f"no object with id {id!r}")
        if model is m.SyncRun:
            authorize(info.context.principal, Action.SYNC_RUNS_READ)
        async with info.context.reader() as reader:
            row = found(await reader.get(model, row_id), f"no object with id {id!r}")
        return _CONVERTERS[type_name](row)

    @strawberry.field(description="An inverter by serial (removed ones included).")
    async def inverter(self, info: Info, serial: str) -> Inverter | None:
        return found(await info.context.loaders.inverter_by_serial.load(serial.strip()), f"no inverter {serial!r}")

    @strawberry.field(description="An account by its upstream id.")
    async def account(self, info: Info, upstream_id: int) -> Account | None:
        account_id = limits.upstream_id(upstream_id, parameter="upstreamId")
        return found(await info.context.loaders.account_by_upstream_id.load(account_id), f"no account {account_id}")

    @strawberry.field(description="A site by its upstream id.")
    async def site(self, info: Info, upstream_id: int) -> Site | None:
        site_id = limits.upstream_id(upstream_id, parameter="upstreamId")
        return found(await info.context.loaders.site_by_upstream_id.load(site_id), f"no site {site_id}")

    @strawberry.field(description="Inverters matching a filter, one page at a time.")
    async def inverters(self, info: Info, filter: InverterFilter | None = None,
                        sort: InverterSort = InverterSort.SERIAL, direction: SortDirection = SortDirection.ASC,
                        first: First = None, after: After = None) -> Connection[Inverter]:
        return await _connection(info, FleetReader.inverters, (filter or InverterFilter()).to_query(), sort,
                                 direction, first, after, Inverter.from_row)

    @strawberry.field(description="Accounts of the hierarchy, one page at a time.")
    async def accounts(self, info: Info, filter: AccountFilter | None = None,
                       sort: AccountSort = AccountSort.USERNAME, direction: SortDirection = SortDirection.ASC,
                       first: First = None, after: After = None) -> Connection[Account]:
        return await _connection(info, FleetReader.accounts, (filter or AccountFilter()).to_query(), sort,
                                 direction, first, after, Account.from_row)

    @strawberry.field(description="Sites, one page at a time.")
    async def sites(self, info: Info, filter: SiteFilter | None = None, sort: SiteSort = SiteSort.NAME,
                    direction: SortDirection = SortDirection.ASC, first: First = None, after: After = None,
                    ) -> Connection[Site]:
        return await _connection(info, FleetReader.sites, (filter or SiteFilter()).to_query(), sort,
                                 direction, first, after, Site.from_row)

    @strawberry.field(description="Dongles, one page at a time.")
    async def dongles(
        self, info: Info, filter: DongleFilter | None = None,
        direction: SortDirection = SortDirection.ASC, first: First = None, after: After = None,
    ) -> Connection[Dongle]:
        return await _connection(info, FleetReader.dongles, (filter or DongleFilter()).to_query(), DongleSort.SERIAL,
                                 direction, first, after, Dongle.from_row)

    @strawberry.field(description="The tenant's sync runs, newest first (operator role; not for subtree keys).")
    async def sync_runs(self, info: Info, first: First = None, after: After = None
                        ) -> Connection[SyncRun]:
        authorize(info.context.principal, Action.SYNC_RUNS_READ)
        async with info.context.reader() as reader:
            page = await reader.sync_runs(page_size(first, parameter="first"), after)
        return Connection[SyncRun].of(page, SyncRun.from_row, after=after)

    @strawberry.field(description="Counts over the inverters matching a filter: by status, model, firmware, "
                                  "battery type, and offline for more than 1 hour, 1 day and 1 week.")
    async def fleet_summary(self, info: Info, filter: InverterFilter | None = None
                            ) -> FleetSummary:
        criteria = (filter or InverterFilter()).to_query()
        async with info.context.reader() as reader:
            summary = await reader.summary(criteria)
        return FleetSummary.from_summary(summary)
