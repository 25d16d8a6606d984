# mypy: disable-error-code="untyped-decorator"
# (strawberry.field(description=...) is typed as returning Any)
"""GraphQL object types of the mirror, each built from its ORM row, with relations both ways via dataloaders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar, cast

import strawberry
from strawberry.scalars import JSON

from service.core.limits import DEFAULT_HISTORY, history_limit, nested_list_size
from service.db.models import mirror as m
from service.db.models.monitoring import AlertState, Severity
from service.gql.campaigns.types import CampaignHistoryEntry
from service.gql.context import Info
from service.gql.mirror.live import InverterLive
from service.gql.monitoring.types import Alert, Incident
from service.gql.types.common import Node, read_fields, to_global_id
from service.mirror.read_model import (
    AccountRead,
    BatteryModuleRead,
    DongleRead,
    InverterRead,
    MeterRead,
    SiteRead,
    SyncRunRead,
    read_values,
)

if TYPE_CHECKING:
    from service.gql.loaders import Capped, Loaders

T = TypeVar("T")
NestedFirst = Annotated[int | None, strawberry.argument(
    description="At most this many rows (default 100, at most 500); each counts towards the query cost.")]


def deferred(awaitable: Awaitable[T]) -> T:
    """A loader's future returned as the resolver's result (graphql-core awaits whatever a resolver returns).

    Relation resolvers below are plain functions returning the future, not coroutines: that saves a coroutine
    and a task per row, most of the cost of a relation on a page of 100. Their annotations give the GraphQL type.
    """
    return cast(T, awaitable)


class _Upstream(Protocol):
    @property
    def upstream_id(self) -> int: ...


class _OfAccount(Protocol):
    @property
    def account_upstream_id(self) -> int | None: ...


class _AtSite(Protocol):
    @property
    def site_upstream_id(self) -> int | None: ...


class _OfInverter(Protocol):
    @property
    def inverter_serial(self) -> str: ...


# Relations several types share; each type gives the field its own description.
def _account(root: _OfAccount, info: Info) -> Account | None:
    """The account ``root`` belongs to (null when it has none, or when it is outside the key's subtree)."""
    if root.account_upstream_id is None:
        return None
    return deferred(info.context.loaders.account_by_upstream_id.load(root.account_upstream_id))


def _site(root: _AtSite, info: Info) -> Site | None:
    """The site ``root`` is at (null when it is at none, or when it is outside the key's subtree)."""
    if root.site_upstream_id is None:
        return None
    return deferred(info.context.loaders.site_by_upstream_id.load(root.site_upstream_id))


def _inverter(root: _OfInverter, info: Info) -> Inverter | None:
    """The inverter ``root`` belongs to."""
    return deferred(info.context.loaders.inverter_by_serial.load(root.inverter_serial))


def _capped_list(node: str, loader: Callable[[Loaders], Capped[Any]], description: str) -> Any:
    """A list field of the ``node`` rows (the GraphQL type's name: most are defined further down) that ``loader``
    finds for the object's upstream id: at most ``first`` of them, which ``description`` is completed with."""

    def resolve(root: _Upstream, info: Info, first: NestedFirst = None) -> list[Any]:
        return deferred(loader(info.context.loaders).load((root.upstream_id, nested_list_size(first))))

    resolve.__annotations__["return"] = f"list[{node}]"  # the schema takes the field's type from here
    return strawberry.field(resolver=resolve, description=f"{description}; at most `first` (default 100, at most "
                                                          "500).")


@strawberry.type(description="A GivEnergy account of the tenant's hierarchy (installer, sub-contractor, end user).")
@read_fields(AccountRead)
class Account(Node, AccountRead):
    upstream_id: int = strawberry.field(description="The account's id at GivEnergy.")
    role: str | None = strawberry.field(description="Upstream role (e.g. INSTALLER, END_USER).")
    depth: int = strawberry.field(description="Depth in the hierarchy (0: the credential's own account).")
    removed_at: datetime | None = strawberry.field(description="When the account disappeared upstream, if it did.")
    address: str | None
    telephone_number: str | None
    changed_at: datetime

    @classmethod
    def from_row(cls, row: m.FleetAccount) -> Account:
        return cls(id=to_global_id("Account", row.id), **read_values(AccountRead, row), address=row.address,
                   telephone_number=row.telephone_number, changed_at=row.changed_at)

    @strawberry.field(description="The parent account (null at the top, or outside the key's subtree).")
    def parent(self, info: Info) -> Account | None:
        if self.parent_upstream_id is None:
            return None
        return deferred(info.context.loaders.account_by_upstream_id.load(self.parent_upstream_id))

    children = _capped_list("Account", lambda loaders: loaders.accounts_by_parent,
                            "Accounts directly below this one (present upstream)")
    sites = _capped_list("Site", lambda loaders: loaders.sites_by_account, "Sites owned by this account")
    dongles = _capped_list("Dongle", lambda loaders: loaders.dongles_by_account, "Dongles registered to this account")
    inverters = _capped_list("Inverter", lambda loaders: loaders.inverters_by_account,
                             "Inverters owned by this account (directly, not by its children)")


@strawberry.type(description="An installation site.")
@read_fields(SiteRead)
class Site(Node, SiteRead):
    upstream_id: int = strawberry.field(description="The site's id at GivEnergy.")
    products: JSON = strawberry.field(description="Products installed, as reported upstream.")
    site_status: str | None = strawberry.field(description="Site status (vacant, opted_in, opted_out), if known.")
    site_status_checked_at: datetime | None
    first_seen_at: datetime
    last_seen_at: datetime
    removed_at: datetime | None

    @classmethod
    def from_row(cls, row: m.Site) -> Site:
        # GraphQL's timezone is the IANA name when upstream gives one (REST shows upstream's label: SiteRead).
        return cls(id=to_global_id("Site", row.id),
                   **read_values(SiteRead, row) | {"timezone": row.tz_timezone or row.timezone},
                   products=cast(Any, row.products), site_status=row.scheme_status,
                   site_status_checked_at=row.scheme_status_checked_at, first_seen_at=row.first_seen_at,
                   last_seen_at=row.last_seen_at, removed_at=row.removed_at)

    account = strawberry.field(resolver=_account, description="The owning account.")
    dongles = _capped_list("Dongle", lambda loaders: loaders.dongles_by_site, "Dongles at this site")
    inverters = _capped_list("Inverter", lambda loaders: loaders.inverters_by_site, "Inverters at this site")

    @strawberry.field(description="The site's open incident (its open alerts grouped, with a one-line summary), "
                                  "or null.")
    def incident(self, info: Info) -> Incident | None:
        return deferred(info.context.loaders.incident_by_site.load(self.upstream_id))


@strawberry.type(description="A communication device (WiFi/GPRS/LAN dongle).")
@read_fields(DongleRead)
class Dongle(Node, DongleRead):
    @classmethod
    def from_row(cls, row: m.Dongle) -> Dongle:
        return cls(id=to_global_id("Dongle", row.id), **read_values(DongleRead, row))

    account = strawberry.field(resolver=_account, description="The account the dongle is registered to.")
    site = strawberry.field(resolver=_site, description="The site the dongle is at.")

    @strawberry.field(description="The inverter behind the dongle.")
    def inverter(self, info: Info) -> Inverter | None:
        return deferred(info.context.loaders.inverter_by_dongle.load(self.serial))


@strawberry.type(description="An inverter as mirrored: rating, firmware and current status.")
@read_fields(InverterRead)
class Inverter(Node, InverterRead):
    status: str | None = strawberry.field(description="Upstream status (NORMAL, WAITING, LOST, ERROR, ...).")

    @classmethod
    def from_row(cls, row: m.Inverter) -> Inverter:
        return cls(id=to_global_id("Inverter", row.id), **read_values(InverterRead, row))

    @strawberry.field(description="The dongle the inverter talks through.")
    def dongle(self, info: Info) -> Dongle | None:
        if self.dongle_serial is None:
            return None
        return deferred(info.context.loaders.dongle_by_serial.load(self.dongle_serial))

    account = strawberry.field(resolver=_account, description="The owning account.")

    site = strawberry.field(resolver=_site, description="The site the inverter is at.")

    @strawberry.field(description="Battery modules, in the order the inverter lists them.")
    def batteries(self, info: Info) -> list[BatteryModule]:
        return deferred(info.context.loaders.batteries_by_inverter.load(self.serial))

    @strawberry.field(description="Energy meters connected to the inverter.")
    def meters(self, info: Info) -> list[Meter]:
        return deferred(info.context.loaders.meters_by_inverter.load(self.serial))

    @strawberry.field(description="Observed changes (status, firmware, account), newest first: `limit` rows "
                                  "(default 20, 0 to 200).")
    async def history(self, info: Info, limit: int = DEFAULT_HISTORY) -> list[InverterChange]:
        rows = history_limit(limit)
        if rows == 0:
            return []
        return await info.context.loaders.changes_by_inverter.load((self.serial, rows))

    @strawberry.field(description="The inverter's alerts, most recently seen first: those in `states` and "
                                  "`severities` (default: any), at most `first` (default 100, at most 500).")
    def alerts(self, info: Info, states: list[AlertState] | None = None, severities: list[Severity] | None = None,
               first: NestedFirst = None) -> list[Alert]:
        key = (self.serial, tuple(dict.fromkeys(states or ())), tuple(dict.fromkeys(severities or ())),
               nested_list_size(first))
        return deferred(info.context.loaders.alerts_by_inverter.load(key))

    @strawberry.field(description="What campaigns did to this inverter, newest campaign first.")
    async def campaign_history(self, info: Info) -> list[CampaignHistoryEntry]:
        return await info.context.loaders.campaigns_by_inverter.load(self.serial)

    @strawberry.field(description="Live data read from the GivEnergy cloud (not the mirror); each field is one "
                                  "upstream call, rate-limited and cached briefly.")
    def live(self) -> InverterLive:
        return InverterLive(serial=self.serial)


@strawberry.type(description="A battery module of an inverter.")
@read_fields(BatteryModuleRead)
class BatteryModule(Node, BatteryModuleRead):
    position: int = strawberry.field(description="Position in the inverter's list (module numbers can repeat).")
    inverter_serial: str
    has_usb: bool | None
    removed_at: datetime | None

    @classmethod
    def from_row(cls, row: m.BatteryModule) -> BatteryModule:
        return cls(id=to_global_id("BatteryModule", row.id), **read_values(BatteryModuleRead, row),
                   inverter_serial=row.inverter_serial, has_usb=row.has_usb, removed_at=row.removed_at)

    inverter = strawberry.field(resolver=_inverter, description="The inverter the module belongs to.")


@strawberry.type(description="An energy meter connected to an inverter.")
@read_fields(MeterRead)
class Meter(Node, MeterRead):
    inverter_serial: str
    removed_at: datetime | None

    @classmethod
    def from_row(cls, row: m.Meter) -> Meter:
        return cls(id=to_global_id("Meter", row.id), **read_values(MeterRead, row),
                   inverter_serial=row.inverter_serial, removed_at=row.removed_at)

    inverter = strawberry.field(resolver=_inverter, description="The inverter the meter is connected to.")


@strawberry.type(description="One observed change of an inverter (status, firmware, account, removal).")
class InverterChange(Node):
    inverter_serial: str
    kind: str = strawberry.field(description="status, firmware_arm, firmware_dsp, account, removed or restored.")
    from_value: str | None
    to_value: str | None
    observed_at: datetime = strawberry.field(description="When a sync saw the change.")

    @classmethod
    def from_row(cls, row: m.InverterChange) -> InverterChange:
        return cls(id=to_global_id("InverterChange", row.id), inverter_serial=row.inverter_serial,
                   kind=str(row.kind.value), from_value=row.from_value, to_value=row.to_value,
                   observed_at=row.observed_at)


@strawberry.type(description="One sync of the tenant's mirror from GivEnergy.")
@read_fields(SyncRunRead)
class SyncRun(Node, SyncRunRead):
    kind: str = strawberry.field(description="full or refresh.")
    state: str = strawberry.field(description="running, succeeded or failed.")

    @classmethod
    def from_row(cls, row: m.SyncRun) -> SyncRun:
        values = read_values(SyncRunRead, row) | {"kind": row.kind.value, "state": row.state.value}
        return cls(id=to_global_id("SyncRun", row.id), **values)
