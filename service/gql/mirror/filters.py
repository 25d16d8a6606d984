"""GraphQL inputs and enums for filtering and sorting the mirror, translated to :mod:`service.mirror.queries`."""

from __future__ import annotations

import strawberry

from service.core.limits import optional_upstream_id
from service.mirror import queries as q
from service.mirror.queries import AccountSort, InverterSort, SiteSort, SortDirection

# The read side's orderings, registered with strawberry in place (GraphQL enum values are the member names).
strawberry.enum(SortDirection, description="Sort direction.")
strawberry.enum(InverterSort, description="Orderings of inverters.")
strawberry.enum(AccountSort, description="Orderings of accounts.")
strawberry.enum(SiteSort, description="Orderings of sites.")


@strawberry.input(description="Inverter criteria; every one given must hold.")
class InverterFilter:
    status_in: list[str] | None = strawberry.field(default=None, description="Status is one of these "
                                                   "(case-insensitive), e.g. [\"ERROR\", \"LOST\"].")
    model_in: list[str] | None = strawberry.field(default=None, description="Model is one of these.")
    battery_type_in: list[str] | None = strawberry.field(default=None, description="Battery type is one of these.")
    firmware_arm_min: int | None = strawberry.field(default=None, description="ARM firmware at least this.")
    firmware_arm_max: int | None = strawberry.field(default=None, description="ARM firmware at most this.")
    firmware_dsp_min: int | None = strawberry.field(default=None, description="DSP firmware at least this.")
    firmware_dsp_max: int | None = strawberry.field(default=None, description="DSP firmware at most this.")
    offline_for_hours: float | None = strawberry.field(
        default=None, description="Last online more than this many hours ago (or never).")
    account_id: int | None = strawberry.field(
        default=None, description="In the subtree of this account (upstream id): a sub-contractor's customers.")
    site_id: int | None = strawberry.field(default=None, description="At this site (upstream id).")
    search: str | None = strawberry.field(
        default=None, description="Text in the inverter, dongle or battery serial, site name, account username, "
                                  "name or postcode.")
    removed: bool | None = strawberry.field(
        default=False, description="false: present upstream (default); true: removed; null: both.")

    def to_query(self) -> q.InverterFilter:
        return q.InverterFilter(
            status_in=self.status_in, model_in=self.model_in, battery_type_in=self.battery_type_in,
            firmware_arm_min=self.firmware_arm_min, firmware_arm_max=self.firmware_arm_max,
            firmware_dsp_min=self.firmware_dsp_min, firmware_dsp_max=self.firmware_dsp_max,
            offline_for_hours=self.offline_for_hours,
            account_id=optional_upstream_id(self.account_id, parameter="accountId"),
            site_id=optional_upstream_id(self.site_id, parameter="siteId"), search=self.search, removed=self.removed)


@strawberry.input(description="Account criteria.")
class AccountFilter:
    under_account_id: int | None = strawberry.field(default=None, description="In this account's subtree.")
    depth: int | None = strawberry.field(default=None, description="At this depth of the hierarchy.")
    search: str | None = strawberry.field(default=None, description="Text in username, names, email, postcode.")
    removed: bool | None = strawberry.field(default=False, description="false: present; true: removed; null: both.")

    def to_query(self) -> q.AccountFilter:
        return q.AccountFilter(under_account_id=optional_upstream_id(self.under_account_id, parameter="underAccountId"),
                               depth=self.depth, search=self.search,
                               removed=self.removed)


@strawberry.input(description="Site criteria.")
class SiteFilter:
    account_id: int | None = strawberry.field(default=None, description="In this account's subtree.")
    site_status_in: list[str] | None = strawberry.field(default=None, description="Site status is one of these.")
    search: str | None = strawberry.field(default=None, description="Text in the site name or account username.")
    removed: bool | None = strawberry.field(default=False, description="false: present; true: removed; null: both.")

    def to_query(self) -> q.SiteFilter:
        return q.SiteFilter(account_id=optional_upstream_id(self.account_id, parameter="accountId"),
                            scheme_status_in=self.site_status_in, search=self.search,
                            removed=self.removed)


@strawberry.input(description="Dongle criteria.")
class DongleFilter:
    account_id: int | None = strawberry.field(default=None, description="In this account's subtree.")
    site_id: int | None = strawberry.field(default=None, description="At this site (upstream id).")
    search: str | None = strawberry.field(default=None, description="Text in the dongle or inverter serial.")
    removed: bool | None = strawberry.field(default=False, description="false: present; true: removed; null: both.")

    def to_query(self) -> q.DongleFilter:
        return q.DongleFilter(account_id=optional_upstream_id(self.account_id, parameter="accountId"),
                              site_id=optional_upstream_id(self.site_id, parameter="siteId"), search=self.search,
                              removed=self.removed)
