"""Read-side queries over the mirror for the API adapters (REST and GraphQL).

Every statement starts from a :class:`ReadScope`: the tenant, and for a sub-contractor key the upstream
account whose subtree it may see. The subtree is a recursive CTE inlined into each statement, so scoping
never costs an extra round trip. Lists page by keyset (see :mod:`service.core.pagination`); batch loads
(:meth:`FleetReader.load_many`) serve the dataloaders, one statement per relation per request.
"""

from __future__ import annotations

import abc
import enum
import functools
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Self, TypeVar
from typing import cast as typed

from sqlalchemy import (
    ColumnElement,
    DateTime,
    FromClause,
    Integer,
    Select,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from service.core import limits
from service.core.clock import utcnow
from service.core.errors import InvalidParameterError
from service.core.pagination import Cursor, Page, cursor_value
from service.core.tenancy import TenantId
from service.db.lists import one_of
from service.db.models.mirror import (
    BatteryModule,
    Dongle,
    FleetAccount,
    Inverter,
    InverterChange,
    Meter,
    Site,
    SyncRun,
    SyncState,
)

M = TypeVar("M")
AccountOwned = FleetAccount | Site | Dongle | Inverter
InverterOwned = BatteryModule | Meter | InverterChange
MODELS: dict[str, type[Any]] = {
    "Account": FleetAccount, "Site": Site, "Dongle": Dongle, "Inverter": Inverter, "BatteryModule": BatteryModule,
    "Meter": Meter, "InverterChange": InverterChange, "SyncRun": SyncRun,
}
_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def _subtree_name(root_upstream_id: int) -> str:
    """The CTE's name: one per root (``subtree_m2000`` for -2000, so it never clashes with 2000's)."""
    return f"subtree_{'m' if root_upstream_id < 0 else ''}{abs(root_upstream_id)}"


def present_first(rows: FromClause) -> list[ColumnElement[Any]]:
    """The order that picks one of several mirrored rows sharing a key (a dongle moved from a removed inverter
    to a new one): rows still present upstream first, then the most recently seen, then the id."""
    return [rows.c.removed_at.is_(None).desc(), rows.c.last_seen_at.desc(), rows.c.id]


@functools.lru_cache(maxsize=1024)
def _subtree(tenant_id: TenantId, root_upstream_id: int) -> Select[int]:
    base = (select(FleetAccount.upstream_id)
            .where(FleetAccount.tenant_id == tenant_id, FleetAccount.upstream_id == root_upstream_id)
            .cte(name=_subtree_name(root_upstream_id), recursive=True))
    below = select(FleetAccount.upstream_id).where(
        FleetAccount.tenant_id == tenant_id, FleetAccount.parent_upstream_id == base.c.upstream_id)
    tree = base.union_all(below)
    return select(tree.c.upstream_id)


@dataclass(frozen=True)
class ReadScope:
    """Whose rows a read may return: one tenant, optionally one account's subtree (by upstream id)."""

    tenant_id: TenantId
    restricted_account_id: int | None = None

    @classmethod
    def of(cls, tenant_id: TenantId, restricted_account_id: str | int | None) -> ReadScope:
        """A scope from an API key's restriction (a malformed restriction sees nothing, never everything)."""
        if restricted_account_id is None:
            return cls(tenant_id)
        try:
            root = int(restricted_account_id)
        except ValueError:
            return cls(tenant_id, -1)
        return cls(tenant_id, root if _storable(root) else -1)

    def subtree(self, root_upstream_id: int) -> Select[int]:
        """Upstream ids of ``root_upstream_id`` and every account below it, in this tenant (one CTE per tenant and
        root, so a statement naming the subtree several times renders it once)."""
        return _subtree(self.tenant_id, root_upstream_id)

    def visible(self, model: type[Any], on: FromClause | None = None) -> list[ColumnElement[bool]]:
        """Conditions restricting ``model``'s rows to this scope; ``on``: an alias of the model's table to
        restrict instead (a statement that reads the table at several levels)."""
        columns = (on if on is not None else model.__table__).c
        conditions: list[ColumnElement[bool]] = [columns.tenant_id == self.tenant_id]
        if self.restricted_account_id is None:
            return conditions
        allowed = self.subtree(self.restricted_account_id)
        if model is FleetAccount:
            conditions.append(columns.upstream_id.in_(allowed))
        elif model in (Site, Dongle, Inverter):
            conditions.append(columns.account_upstream_id.in_(allowed))
        elif model in (BatteryModule, Meter, InverterChange):
            conditions.append(columns.inverter_serial.in_(
                select(Inverter.serial).where(Inverter.tenant_id == self.tenant_id,
                                              Inverter.account_upstream_id.in_(allowed))))
        elif model is SyncRun:
            conditions.append(false())  # sync runs describe the whole tenant's fleet
        return conditions


class SortDirection(enum.Enum):
    """Ascending or descending."""

    ASC = "asc"
    DESC = "desc"


class SortKey(enum.StrEnum):
    """A named ordering, the base of each list's enum of orderings: the member's value is its name (cursors carry
    it), its :attr:`expression` the column it sorts by (null-free, so keyset comparison works) and :attr:`parse`
    how to read that column's value back from a cursor. Members are declared ``NAME = "name", expression, parse``.
    """

    _value_: str
    expression: Callable[[], ColumnElement[Any] | InstrumentedAttribute[Any]]
    parse: Callable[[Any], Any]

    def __new__(cls, name: str, expression: Callable[[], ColumnElement[Any] | InstrumentedAttribute[Any]],
                parse: Callable[[Any], Any]) -> Self:
        member = str.__new__(cls, name)
        member._value_ = name
        member.expression = expression
        member.parse = parse
        return member


@dataclass(frozen=True)
class PageWindow:
    """Where a keyset page of ``model`` starts and how it is ordered: the sort expression, the name its cursors
    carry, the condition of rows after cursor ``after`` (none on the first page) and the ordering (ties broken
    by id). A malformed cursor, or one made for another ordering, is an :class:`InvalidParameterError`."""

    key: ColumnElement[Any]
    cursor_kind: str
    after: list[ColumnElement[bool]]
    ordering: tuple[ColumnElement[Any], ColumnElement[Any]]

    @classmethod
    def of(cls, model: type[Any], sort: SortKey, direction: SortDirection, after: str | None) -> PageWindow:
        """The window of ``model`` sorted by ``sort`` after cursor ``after``."""
        key = typed(ColumnElement[Any], sort.expression())
        id_column = model.id
        cursor_kind = f"{model.__name__}.{sort.value}.{direction.value}"
        conditions: list[ColumnElement[bool]] = []
        if after is not None:
            cursor = Cursor.decode(after, sort=cursor_kind)
            position = tuple_(key, id_column)
            bound = tuple_(literal(sort.parse(cursor.value), key.type), literal(cursor.id, id_column.type))
            conditions.append(position > bound if direction is SortDirection.ASC else position < bound)
        ascending = direction is SortDirection.ASC
        ordering = (key.asc(), id_column.asc()) if ascending else (key.desc(), id_column.desc())
        return cls(key, cursor_kind, conditions, ordering)


def _malformed() -> InvalidParameterError:
    return InvalidParameterError("malformed cursor", parameter="cursor")


def _datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise _malformed()
    try:
        return limits.moment(datetime.fromisoformat(value), parameter="cursor")
    except ValueError as exc:
        raise _malformed() from exc


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _malformed()
    return value


def _int32(value: Any) -> int:
    return limits.int_of_width(value, limits.INT32, parameter="cursor")


def _int64(value: Any) -> int:
    return limits.int_of_width(value, limits.INT64, parameter="cursor")


def numeric_version(column: InstrumentedAttribute[str | None]) -> ColumnElement[int]:
    """A firmware version as a number (non-numeric versions sort first, as -1)."""
    return case((column.op("~")("^[0-9]{1,9}$"), cast(column, Integer)), else_=literal(-1))


def _coalesce_text(column: InstrumentedAttribute[Any]) -> Callable[[], ColumnElement[str]]:
    return lambda: func.coalesce(column, literal(""))


def _coalesce_time(column: InstrumentedAttribute[Any]) -> Callable[[], ColumnElement[datetime]]:
    return lambda: func.coalesce(column, literal(_EPOCH, DateTime(timezone=True)))


class InverterSort(SortKey):
    """Orderings of inverters."""

    SERIAL = "serial", lambda: Inverter.serial, _text
    STATUS = "status", _coalesce_text(Inverter.status), _text
    MODEL = "model", _coalesce_text(Inverter.model), _text
    LAST_ONLINE = "last_online", _coalesce_time(Inverter.last_online), _datetime
    FIRMWARE_ARM = "firmware_arm", lambda: numeric_version(Inverter.firmware_arm), _int32
    FIRST_SEEN = "first_seen", lambda: Inverter.first_seen_at, _datetime


class AccountSort(SortKey):
    """Orderings of accounts."""

    USERNAME = "username", lambda: FleetAccount.username, _text
    DEPTH = "depth", lambda: FleetAccount.depth, _int32
    FIRST_SEEN = "first_seen", lambda: FleetAccount.first_seen_at, _datetime


class SiteSort(SortKey):
    """Orderings of sites."""

    NAME = "name", _coalesce_text(Site.name), _text
    UPSTREAM_ID = "upstream_id", lambda: Site.upstream_id, _int64


class DongleSort(SortKey):
    """Orderings of dongles."""

    SERIAL = "serial", lambda: Dongle.serial, _text


class SyncRunSort(SortKey):
    """Orderings of sync runs."""

    STARTED_AT = "started_at", lambda: SyncRun.started_at, _datetime


def _texts(values: Sequence[str]) -> list[str]:
    """Filter values that can match a stored text (PostgreSQL text cannot hold NUL, and rejects it in a query)."""
    return [value for value in values if "\x00" not in value]


def _storable(key: Any) -> bool:
    """Whether a lookup key could be stored at all (bigint range, no NUL); others match nothing."""
    if key is None:
        return False
    if isinstance(key, int):
        return -(2**63) <= key < 2**63
    return not (isinstance(key, str) and "\x00" in key)


def _like(text: str) -> str:
    limits.search_text(text, parameter="search")
    escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _searched(search: str | None, matches: Callable[[str], ColumnElement[bool]]) -> list[ColumnElement[bool]]:
    """The condition of a text search: ``matches`` given its LIKE pattern; a text no row can hold matches nothing."""
    if not search:
        return []
    return [matches(_like(search)) if _texts([search]) else false()]


def _removed(model: type[Any], removed: bool | None) -> list[ColumnElement[bool]]:
    if removed is None:
        return []
    return [model.removed_at.is_not(None) if removed else model.removed_at.is_(None)]


@dataclass(frozen=True)
class InverterFilter:
    """What a fleet operator filters inverters by; every given criterion must hold.

    ``removed``: ``False`` (default) only inverters still present upstream, ``True`` only removed ones,
    ``None`` both. ``offline_for_hours``: last online longer ago than that (or never).
    """

    status_in: Sequence[str] | None = None
    model_in: Sequence[str] | None = None
    battery_type_in: Sequence[str] | None = None
    firmware_arm_min: int | None = None
    firmware_arm_max: int | None = None
    firmware_dsp_min: int | None = None
    firmware_dsp_max: int | None = None
    offline_for_hours: float | None = None
    account_id: int | None = None
    site_id: int | None = None
    search: str | None = None
    removed: bool | None = False
    site_id_in: Sequence[int] | None = None
    serial_in: Sequence[str] | None = None

    def conditions(self, scope: ReadScope, now: datetime) -> list[ColumnElement[bool]]:
        """SQL conditions for this filter (on ``Inverter``)."""
        where = [*scope.visible(Inverter), *_removed(Inverter, self.removed)]
        if self.status_in is not None:
            # exactly the expression ix_mirror_inverters_tenant_id_status_folded indexes (mirror.FOLDED_STATUS)
            folded = func.upper(func.coalesce(Inverter.status, literal_column("''")))
            where.append(folded.in_([s.upper() for s in _texts(self.status_in)]))
        if self.model_in is not None:
            where.append(Inverter.model.in_(_texts(self.model_in)))
        if self.battery_type_in is not None:
            where.append(Inverter.battery_type.in_(_texts(self.battery_type_in)))
        for column, low, high in ((Inverter.firmware_arm, self.firmware_arm_min, self.firmware_arm_max),
                                  (Inverter.firmware_dsp, self.firmware_dsp_min, self.firmware_dsp_max)):
            if low is not None:
                where.append(numeric_version(column) >= low)
            if high is not None:
                where.append(and_(numeric_version(column) <= high, numeric_version(column) >= 0))
        if self.offline_for_hours is not None:
            hours = limits.hours(self.offline_for_hours, parameter="offline_for_hours") or 0.0
            cutoff = now - timedelta(hours=hours)
            where.append(or_(Inverter.last_online.is_(None), Inverter.last_online < cutoff))
        if self.account_id is not None:
            where.append(Inverter.account_upstream_id.in_(scope.subtree(self.account_id)))
        if self.site_id is not None:
            where.append(Inverter.site_upstream_id == self.site_id)
        where += self._lists()
        where += _searched(self.search, lambda pattern: self._search(scope, pattern))
        return where

    def _lists(self) -> list[ColumnElement[bool]]:
        """Membership in explicit lists of sites and serials (campaign targets)."""
        where: list[ColumnElement[bool]] = []
        if self.site_id_in is not None:
            where.append(one_of(Inverter.site_upstream_id, [key for key in self.site_id_in if _storable(key)]))
        if self.serial_in is not None:
            where.append(one_of(Inverter.serial, _texts(self.serial_in)))
        return where

    @staticmethod
    def _search(scope: ReadScope, pattern: str) -> ColumnElement[bool]:
        sites = select(Site.upstream_id).where(Site.tenant_id == scope.tenant_id, Site.name.ilike(pattern))
        accounts = select(FleetAccount.upstream_id).where(
            FleetAccount.tenant_id == scope.tenant_id,
            or_(FleetAccount.username.ilike(pattern), FleetAccount.postcode.ilike(pattern),
                FleetAccount.first_name.ilike(pattern), FleetAccount.surname.ilike(pattern)))
        batteries = select(BatteryModule.inverter_serial).where(
            BatteryModule.tenant_id == scope.tenant_id, BatteryModule.serial.ilike(pattern))
        return or_(Inverter.serial.ilike(pattern), Inverter.dongle_serial.ilike(pattern),
                   Inverter.site_upstream_id.in_(sites), Inverter.account_upstream_id.in_(accounts),
                   Inverter.serial.in_(batteries))


@dataclass(frozen=True, kw_only=True)
class _ListFilter(abc.ABC):
    """What a list of accounts, sites or dongles filters by, besides its own criteria: a text ``search``
    (any of :attr:`searched` contains it, case-insensitively) and ``removed`` (``False``, the default: only rows
    still present upstream, ``True`` only removed ones, ``None`` both)."""

    model: ClassVar[type[Any]]
    searched: ClassVar[tuple[InstrumentedAttribute[Any], ...]]

    search: str | None = None
    removed: bool | None = False

    def conditions(self, scope: ReadScope) -> list[ColumnElement[bool]]:
        """SQL conditions (on :attr:`model`): visible in ``scope``, removed or not, its own criteria, the search."""
        return [*scope.visible(self.model), *_removed(self.model, self.removed), *self.criteria(scope),
                *_searched(self.search, lambda pattern: or_(*(column.ilike(pattern) for column in self.searched)))]

    @abc.abstractmethod
    def criteria(self, scope: ReadScope) -> Iterator[ColumnElement[bool]]:
        """The conditions of this filter's own criteria."""


@dataclass(frozen=True)
class AccountFilter(_ListFilter):
    """Accounts: under an account (its subtree), at a depth, by text, removed or not."""

    model = FleetAccount
    searched = (FleetAccount.username, FleetAccount.postcode, FleetAccount.first_name, FleetAccount.surname,
                FleetAccount.email)

    under_account_id: int | None = None
    depth: int | None = None

    def criteria(self, scope: ReadScope) -> Iterator[ColumnElement[bool]]:
        if self.under_account_id is not None:
            yield FleetAccount.upstream_id.in_(scope.subtree(self.under_account_id))
        if self.depth is not None:
            yield FleetAccount.depth == self.depth


@dataclass(frozen=True)
class SiteFilter(_ListFilter):
    """Sites: of an account subtree, by site status, by text, removed or not."""

    model = Site
    searched = (Site.name, Site.account_username)

    account_id: int | None = None
    scheme_status_in: Sequence[str] | None = None

    def criteria(self, scope: ReadScope) -> Iterator[ColumnElement[bool]]:
        if self.account_id is not None:
            yield Site.account_upstream_id.in_(scope.subtree(self.account_id))
        if self.scheme_status_in is not None:
            yield Site.scheme_status.in_(_texts(self.scheme_status_in))


@dataclass(frozen=True)
class DongleFilter(_ListFilter):
    """Dongles: of an account subtree, of a site, by text, removed or not."""

    model = Dongle
    searched = (Dongle.serial, Dongle.inverter_serial)

    account_id: int | None = None
    site_id: int | None = None

    def criteria(self, scope: ReadScope) -> Iterator[ColumnElement[bool]]:
        if self.account_id is not None:
            yield Dongle.account_upstream_id.in_(scope.subtree(self.account_id))
        if self.site_id is not None:
            yield Dongle.site_upstream_id == self.site_id


@dataclass(frozen=True)
class Breakdown:
    """One bucket of a summary: a value (``None`` when unknown) and how many inverters have it."""

    value: str | None
    count: int


@dataclass(frozen=True)
class FleetSummary:
    """Counts over the inverters matching a filter, computed in one SQL statement."""

    total: int
    by_status: list[Breakdown]
    by_model: list[Breakdown]
    by_firmware_arm: list[Breakdown]
    by_firmware_dsp: list[Breakdown]
    by_battery_type: list[Breakdown]
    offline: dict[int, int] = field(default_factory=dict)


OFFLINE_THRESHOLDS_HOURS = (1, 24, 24 * 7)


def _columns(model: type[Any]) -> list[Any]:
    return list(model.__table__.columns)


class FleetReader:
    """Scoped reads of one tenant's mirror on one session.

    Rows come back as SQLAlchemy ``Row``s carrying the model's columns as attributes (``row.serial``), typed
    as the model for readers' convenience: the read side never writes, and a plain row costs a fraction of an
    identity-mapped ORM instance when a page holds hundreds of them.
    """

    def __init__(self, session: AsyncSession, scope: ReadScope, *, now: datetime | None = None) -> None:
        self.session = session
        self.scope = scope
        self.now = now or utcnow()

    async def get(self, model: type[M], row_id: uuid.UUID) -> M | None:
        """A visible row by primary key (``None`` for a foreign, removed-from-scope or unknown id)."""
        row = (await self.session.execute(
            select(*_columns(model)).where(model.id == row_id, *self.scope.visible(model))  # type: ignore[attr-defined]
        )).one_or_none()
        return typed(M | None, row)

    async def load_many(self, model: type[M], column: InstrumentedAttribute[Any], keys: Iterable[Any],
                        *, order_by: Sequence[Any] = (), present_only: bool = False,
                        per_key: int | None = None) -> list[M]:
        """Visible rows of ``model`` whose ``column`` is one of ``keys`` (one statement, for a dataloader);
        ``present_only`` leaves out rows removed upstream; ``per_key`` reads at most that many rows per key (the
        first in ``order_by``), so a parent with thousands of children never costs more than asked."""
        wanted = list({key for key in keys if _storable(key)})
        if not wanted or per_key == 0:
            return []
        conditions = [column.in_(wanted), *self.scope.visible(model)]
        if present_only:
            conditions.append(model.removed_at.is_(None))  # type: ignore[attr-defined]
        if per_key is None:
            statement = select(*_columns(model)).where(*conditions).order_by(*order_by)
            return typed(list[M], list((await self.session.execute(statement)).all()))
        rank = func.row_number().over(partition_by=column, order_by=order_by or None)
        ranked = select(*_columns(model), rank.label("rank")).where(*conditions).subquery()
        capped = (select(*(ranked.c[c.name] for c in _columns(model))).where(ranked.c.rank <= per_key)
                  .order_by(ranked.c.rank))
        return typed(list[M], list((await self.session.execute(capped)).all()))

    async def latest_changes(self, serials: Iterable[str], per_inverter: int) -> list[InverterChange]:
        """The newest ``per_inverter`` history rows of each inverter (one statement, a window per inverter)."""
        wanted = [serial for serial in set(serials) if _storable(serial)]
        if not wanted:
            return []
        rank = func.row_number().over(partition_by=InverterChange.inverter_serial,
                                      order_by=(InverterChange.observed_at.desc(), InverterChange.id.desc()))
        ranked = (select(*_columns(InverterChange), rank.label("rank"))
                  .where(InverterChange.inverter_serial.in_(wanted), *self.scope.visible(InverterChange))
                  .subquery())
        statement = (select(*(ranked.c[c.name] for c in _columns(InverterChange)))
                     .where(ranked.c.rank <= per_inverter)
                     .order_by(ranked.c.inverter_serial, ranked.c.observed_at.desc(), ranked.c.id.desc()))
        return typed(list[InverterChange], list((await self.session.execute(statement)).all()))

    async def page(self, model: type[M], conditions: Sequence[ColumnElement[bool]], sort: SortKey,
                   direction: SortDirection, first: int, after: str | None) -> Page[M]:
        """One page after cursor ``after`` (two statements: the rows and the total)."""
        window = PageWindow.of(model, sort, direction, after)
        statement = select(*_columns(model), window.key.label("sort_key")).where(*conditions, *window.after)
        rows = (await self.session.execute(statement.order_by(*window.ordering).limit(first + 1))).all()
        total = (await self.session.execute(
            select(func.count()).select_from(model).where(*conditions))).scalar_one()
        items = typed(list[M], rows[:first])
        cursors = [Cursor(window.cursor_kind, cursor_value(row.sort_key), row.id).encode() for row in rows[:first]]
        return Page(items=items, cursors=cursors, has_next_page=len(rows) > first, total_count=total)

    async def inverters(self, where: InverterFilter, sort: InverterSort = InverterSort.SERIAL,
                        direction: SortDirection = SortDirection.ASC, first: int = 50,
                        after: str | None = None) -> Page[Inverter]:
        """A page of inverters."""
        return await self.page(Inverter, where.conditions(self.scope, self.now), sort, direction, first, after)

    async def accounts(self, where: AccountFilter, sort: AccountSort = AccountSort.USERNAME,
                       direction: SortDirection = SortDirection.ASC, first: int = 50,
                       after: str | None = None) -> Page[FleetAccount]:
        """A page of accounts."""
        return await self.page(FleetAccount, where.conditions(self.scope), sort, direction, first, after)

    async def sites(self, where: SiteFilter, sort: SiteSort = SiteSort.NAME,
                    direction: SortDirection = SortDirection.ASC, first: int = 50,
                    after: str | None = None) -> Page[Site]:
        """A page of sites."""
        return await self.page(Site, where.conditions(self.scope), sort, direction, first, after)

    async def dongles(self, where: DongleFilter, sort: DongleSort = DongleSort.SERIAL,
                      direction: SortDirection = SortDirection.ASC, first: int = 50,
                      after: str | None = None) -> Page[Dongle]:
        """A page of dongles."""
        return await self.page(Dongle, where.conditions(self.scope), sort, direction, first, after)

    async def sync_runs(self, first: int = 50, after: str | None = None) -> Page[SyncRun]:
        """The tenant's sync runs, newest first."""
        return await self.page(SyncRun, self.scope.visible(SyncRun), SyncRunSort.STARTED_AT, SortDirection.DESC,
                               first, after)

    async def unfinished_sync_run(self) -> SyncRun | None:
        """The tenant's running sync run, if any (at most one exists)."""
        row = (await self.session.execute(select(*_columns(SyncRun)).where(
            *self.scope.visible(SyncRun), SyncRun.state == SyncState.RUNNING))).first()
        return typed(SyncRun | None, row)

    async def inverter_by_serial(self, serial: str) -> Inverter | None:
        """A visible inverter by serial (removed ones included)."""
        rows = await self.load_many(Inverter, Inverter.serial, [serial])
        return rows[0] if rows else None

    async def summary(self, where: InverterFilter) -> FleetSummary:
        """Counts by status, model, firmware, battery type, and offline counts, in one statement."""
        dimensions = {
            "status": func.upper(Inverter.status), "model": Inverter.model, "firmware_arm": Inverter.firmware_arm,
            "firmware_dsp": Inverter.firmware_dsp, "battery_type": Inverter.battery_type,
        }
        offline = [
            func.count().filter(or_(Inverter.last_online.is_(None),
                                    Inverter.last_online < self.now - timedelta(hours=hours))).label(f"offline_{hours}")
            for hours in OFFLINE_THRESHOLDS_HOURS
        ]
        grouping = func.grouping(*dimensions.values()).label("grouping")
        statement: Select[*tuple[Any, ...]] = (
            select(*(column.label(name) for name, column in dimensions.items()), grouping,
                   func.count().label("n"), *offline)
            .where(*where.conditions(self.scope, self.now))
            .group_by(func.grouping_sets(*dimensions.values(), tuple_()))
        )
        rows = (await self.session.execute(statement)).mappings().all()
        buckets: dict[str, list[Breakdown]] = {name: [] for name in dimensions}
        total, offline_counts = 0, {hours: 0 for hours in OFFLINE_THRESHOLDS_HOURS}
        width = len(dimensions)
        for row in rows:
            mask = row["grouping"]
            if mask == (1 << width) - 1:  # the grand total: every dimension aggregated away
                total = row["n"]
                offline_counts = {hours: row[f"offline_{hours}"] for hours in OFFLINE_THRESHOLDS_HOURS}
                continue
            for index, name in enumerate(dimensions):
                if not mask & (1 << (width - 1 - index)):
                    value = row[name]
                    buckets[name].append(Breakdown(None if value is None else str(value), row["n"]))
        for values in buckets.values():
            values.sort(key=lambda bucket: (-bucket.count, bucket.value or ""))
        return FleetSummary(total=total, by_status=buckets["status"], by_model=buckets["model"],
                            by_firmware_arm=buckets["firmware_arm"], by_firmware_dsp=buckets["firmware_dsp"],
                            by_battery_type=buckets["battery_type"], offline=offline_counts)


__all__ = [
    "MODELS",
    "OFFLINE_THRESHOLDS_HOURS",
    "AccountFilter",
    "AccountSort",
    "Breakdown",
    "DongleFilter",
    "DongleSort",
    "FleetReader",
    "FleetSummary",
    "InverterFilter",
    "InverterSort",
    "PageWindow",
    "ReadScope",
    "SiteFilter",
    "SiteSort",
    "SortDirection",
    "SortKey",
    "SyncRunSort",
]
