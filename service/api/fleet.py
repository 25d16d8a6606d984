"""REST read API over the mirror (``/api/v1``): the same resources and filters as GraphQL, cursor-paginated,
scoped to the caller's tenant and subtree, with problem+json errors.

Lists answer ``{"items": [...], "next_cursor": ..., "total_count": N}``; pass ``next_cursor`` back as
``cursor`` for the next page. A foreign, removed-from-scope or unknown key is a 404.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, TypeVar

from litestar import Controller, get
from litestar.params import FromQuery, Parameter
from pydantic import BaseModel, ConfigDict, Field

from service.api.common import Cursor, Limit, PageView, SerialPath, Upstream, require_inverter, scope_of
from service.api.dependencies import ReadDb
from service.api.openapi import problems
from service.authn import PrincipalDep
from service.core import limits
from service.core.errors import NotFoundError
from service.db.models import mirror as m
from service.mirror import queries as reads
from service.mirror.read_model import AccountRead, BatteryModuleRead, DongleRead, InverterRead, MeterRead, SiteRead

ERRORS = problems(400, 401, 403, 404, 422, 429)
_Sort = TypeVar("_Sort", bound=enum.Enum)


class _Row(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class AccountView(_Row, AccountRead):
    """An account of the tenant's GivEnergy hierarchy."""


class SiteView(_Row, SiteRead):
    """An installation site; ``scheme_status`` is its site status."""

    scheme_status: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    removed_at: datetime | None


class DongleView(_Row, DongleRead):
    """A communication device."""


class BatteryModuleView(_Row, BatteryModuleRead):
    """A battery module of an inverter."""


class MeterView(_Row, MeterRead):
    """A meter connected to an inverter."""


class InverterView(_Row, InverterRead):
    """An inverter as mirrored."""


class InverterDetailView(InverterView):
    """An inverter with its batteries and meters."""

    batteries: list[BatteryModuleView] = Field(default_factory=list)
    meters: list[MeterView] = Field(default_factory=list)


class InverterChangeView(_Row):
    """One observed change of an inverter."""

    kind: str
    from_value: str | None
    to_value: str | None
    observed_at: datetime


class BucketView(BaseModel):
    """How many inverters have a value (null: unknown)."""

    value: str | None
    count: int


class FleetSummaryView(BaseModel):
    """Counts over the inverters matching the filter."""

    total: int
    by_status: list[BucketView]
    by_model: list[BucketView]
    by_firmware_arm: list[BucketView]
    by_firmware_dsp: list[BucketView]
    by_battery_type: list[BucketView]
    offline_for_more_than_hours: dict[str, int]


HistoryLimit = Annotated[int, Parameter(ge=0, le=limits.MAX_HISTORY, description=(
    f"How many changes (0 to {limits.MAX_HISTORY})."))]
Direction = Annotated[str, Parameter(description="Sort direction: asc or desc (any case).")]
Removed = Annotated[bool | None, Parameter(
    description="false: present upstream (default); true: removed upstream; omit with `include_removed` for both.")]
Search = Annotated[str | None, Parameter(max_length=limits.MAX_SEARCH_LENGTH, description="Text to search for.")]
UpstreamPath = Annotated[int, Parameter(ge=1, le=limits.MAX_UPSTREAM_ID, description="An upstream id.")]
Statuses = Annotated[list[str] | None, Parameter(description=(
    "Status is one of these (repeat; any case). The cloud adds statuses, so any text is taken: one no inverter "
    "has matches nothing."))]
FirmwareBound = Annotated[int | None, Parameter(ge=-1, le=10**9, description="A firmware version number.")]





def _sorts(options: type[enum.Enum]) -> str:
    return "Sort order, any case: " + ", ".join(str(member.value) for member in options) + "."


def _direction(value: str) -> reads.SortDirection:
    return limits.choice(value, reads.SortDirection, parameter="direction")


def _sorting(sort: str, options: type[_Sort], direction: str) -> tuple[_Sort, reads.SortDirection]:
    """The ``sort`` (one of ``options``) and ``direction`` parameters as the reader takes them, checked in turn."""
    return limits.choice(sort, options, parameter="sort"), _direction(direction)


def _removed(removed: bool | None, include_removed: bool) -> bool | None:
    return None if include_removed else (False if removed is None else removed)


class FleetController(Controller):
    """Read-only access to the mirrored fleet (any role; subtree keys see their subtree)."""

    path = "/api/v1"
    tags = ["fleet"]
    security = [{"apiKey": []}]

    @get("/inverters", responses=ERRORS)
    async def list_inverters(
        self, principal: PrincipalDep, read_session: ReadDb,
        status: Statuses = None,
        model: Annotated[list[str] | None, Parameter(description="Model is one of these (repeat).")] = None,
        battery_type: Annotated[list[str] | None, Parameter(description="Battery type is one of these.")] = None,
        firmware_arm_min: FirmwareBound = None, firmware_arm_max: FirmwareBound = None,
        firmware_dsp_min: FirmwareBound = None, firmware_dsp_max: FirmwareBound = None,
        offline_for_hours: Annotated[float | None, Parameter(description=(
            f"Last online more than this many hours ago, or never (0 to {limits.MAX_OFFLINE_HOURS})."))] = None,
        account_id: Upstream = None, site_id: Upstream = None, q: Search = None,
        removed: Removed = None, include_removed: FromQuery[bool] = False,
        sort: Annotated[str, Parameter(description=_sorts(reads.InverterSort))] = reads.InverterSort.SERIAL,
        direction: Direction = "asc", limit: Limit = limits.DEFAULT_PAGE_SIZE, cursor: Cursor = None,
    ) -> PageView[InverterView]:
        """Inverters matching every given filter, one page at a time."""
        criteria = reads.InverterFilter(
            status_in=status, model_in=model, battery_type_in=battery_type, firmware_arm_min=firmware_arm_min,
            firmware_arm_max=firmware_arm_max, firmware_dsp_min=firmware_dsp_min, firmware_dsp_max=firmware_dsp_max,
            offline_for_hours=offline_for_hours, account_id=account_id, site_id=site_id, search=q,
            removed=_removed(removed, include_removed))
        reader = reads.FleetReader(read_session, scope_of(principal))
        page = await reader.inverters(criteria, *_sorting(sort, reads.InverterSort, direction), limit, cursor)
        return PageView[InverterView].of(page, InverterView.model_validate)

    @get("/inverters/{serial:str}", responses=ERRORS)
    async def get_inverter(self, principal: PrincipalDep, read_session: ReadDb,
                           serial: SerialPath) -> InverterDetailView:
        """One inverter by serial, with its batteries and meters."""
        reader = reads.FleetReader(read_session, scope_of(principal))
        row = await reader.inverter_by_serial(serial)
        if row is None:
            raise NotFoundError(f"no inverter {serial!r}")
        batteries = await reader.load_many(m.BatteryModule, m.BatteryModule.inverter_serial, [serial],
                                           order_by=[m.BatteryModule.position], present_only=True)
        meters = await reader.load_many(m.Meter, m.Meter.inverter_serial, [serial], order_by=[m.Meter.address],
                                        present_only=True)
        detail = InverterDetailView.model_validate(row)
        detail.batteries = [BatteryModuleView.model_validate(b) for b in batteries]
        detail.meters = [MeterView.model_validate(meter) for meter in meters]
        return detail

    @get("/inverters/{serial:str}/history", responses=ERRORS)
    async def inverter_history(self, principal: PrincipalDep, read_session: ReadDb, serial: SerialPath,
                               limit: HistoryLimit = limits.DEFAULT_HISTORY) -> list[InverterChangeView]:
        """Observed changes of an inverter, newest first."""
        reader = reads.FleetReader(read_session, scope_of(principal))
        await require_inverter(reader, serial)
        rows = await reader.latest_changes([serial], limit) if limit else []
        return [InverterChangeView(kind=row.kind.value, from_value=row.from_value, to_value=row.to_value,
                                   observed_at=row.observed_at) for row in rows]

    @get("/accounts", responses=ERRORS)
    async def list_accounts(
        self, principal: PrincipalDep, read_session: ReadDb, under_account_id: Upstream = None,
        depth: Annotated[int | None, Parameter(ge=-1, le=100, description="Depth in the hierarchy.")] = None,
        q: Search = None,
        removed: Removed = None, include_removed: FromQuery[bool] = False,
        sort: Annotated[str, Parameter(description=_sorts(reads.AccountSort))] = reads.AccountSort.USERNAME,
        direction: Direction = "asc", limit: Limit = limits.DEFAULT_PAGE_SIZE, cursor: Cursor = None,
    ) -> PageView[AccountView]:
        """Accounts of the hierarchy, one page at a time."""
        criteria = reads.AccountFilter(under_account_id=under_account_id, depth=depth, search=q,
                                   removed=_removed(removed, include_removed))
        page = await reads.FleetReader(read_session, scope_of(principal)).accounts(
            criteria, *_sorting(sort, reads.AccountSort, direction), limit, cursor)
        return PageView[AccountView].of(page, AccountView.model_validate)

    @get("/accounts/{upstream_id:int}", responses=ERRORS)
    async def get_account(self, principal: PrincipalDep, read_session: ReadDb,
                          upstream_id: UpstreamPath) -> AccountView:
        """One account by upstream id."""
        rows = await reads.FleetReader(read_session, scope_of(principal)).load_many(
            m.FleetAccount, m.FleetAccount.upstream_id, [upstream_id])
        if not rows:
            raise NotFoundError(f"no account {upstream_id}")
        return AccountView.model_validate(rows[0])

    @get("/sites", responses=ERRORS)
    async def list_sites(
        self, principal: PrincipalDep, read_session: ReadDb, account_id: Upstream = None,
        site_status: Annotated[list[str] | None, Parameter(description="Site status is one of these.")] = None,
        q: Search = None, removed: Removed = None, include_removed: FromQuery[bool] = False,
        sort: Annotated[str, Parameter(description=_sorts(reads.SiteSort))] = reads.SiteSort.NAME,
        direction: Direction = "asc", limit: Limit = limits.DEFAULT_PAGE_SIZE, cursor: Cursor = None,
    ) -> PageView[SiteView]:
        """Sites, one page at a time."""
        criteria = reads.SiteFilter(account_id=account_id, scheme_status_in=site_status, search=q,
                                removed=_removed(removed, include_removed))
        reader = reads.FleetReader(read_session, scope_of(principal))
        page = await reader.sites(criteria, *_sorting(sort, reads.SiteSort, direction), limit, cursor)
        return PageView[SiteView].of(page, SiteView.model_validate)

    @get("/sites/{upstream_id:int}", responses=ERRORS)
    async def get_site(self, principal: PrincipalDep, read_session: ReadDb, upstream_id: UpstreamPath) -> SiteView:
        """One site by upstream id."""
        reader = reads.FleetReader(read_session, scope_of(principal))
        rows = await reader.load_many(m.Site, m.Site.upstream_id, [upstream_id])
        if not rows:
            raise NotFoundError(f"no site {upstream_id}")
        return SiteView.model_validate(rows[0])

    @get("/dongles", responses=ERRORS)
    async def list_dongles(
        self, principal: PrincipalDep, read_session: ReadDb, account_id: Upstream = None, site_id: Upstream = None,
        q: Search = None, removed: Removed = None, include_removed: FromQuery[bool] = False,
        direction: Direction = "asc", limit: Limit = limits.DEFAULT_PAGE_SIZE, cursor: Cursor = None,
    ) -> PageView[DongleView]:
        """Dongles, one page at a time."""
        criteria = reads.DongleFilter(account_id=account_id, site_id=site_id, search=q,
                                  removed=_removed(removed, include_removed))
        page = await reads.FleetReader(read_session, scope_of(principal)).dongles(
            criteria, reads.DongleSort.SERIAL, _direction(direction), limit, cursor)
        return PageView[DongleView].of(page, DongleView.model_validate)

    @get("/fleet/summary", responses=ERRORS)
    async def fleet_summary(
        self, principal: PrincipalDep, read_session: ReadDb,
        status: Statuses = None,
        model: Annotated[list[str] | None, Parameter(description="Model is one of these (repeat).")] = None,
        account_id: Upstream = None, site_id: Upstream = None,
    ) -> FleetSummaryView:
        """Counts by status, model, firmware and battery type, and offline counts, over the present inverters."""
        criteria = reads.InverterFilter(status_in=status, model_in=model, account_id=account_id, site_id=site_id)
        summary = await reads.FleetReader(read_session, scope_of(principal)).summary(criteria)

        def buckets(values: list[reads.Breakdown]) -> list[BucketView]:
            return [BucketView(value=b.value, count=b.count) for b in values]

        return FleetSummaryView(
            total=summary.total, by_status=buckets(summary.by_status), by_model=buckets(summary.by_model),
            by_firmware_arm=buckets(summary.by_firmware_arm), by_firmware_dsp=buckets(summary.by_firmware_dsp),
            by_battery_type=buckets(summary.by_battery_type),
            offline_for_more_than_hours={str(hours): count for hours, count in summary.offline.items()})
