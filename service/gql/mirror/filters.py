"""GraphQL inputs and enums for filtering and sorting the mirror, translated to :mod:`service.mirror.queries`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import strawberry
from strawberry.utils.str_converters import to_camel_case

from service.core.limits import optional_upstream_id
from service.mirror import queries as q
from service.mirror.queries import AccountSort, InverterSort, SiteSort, SortDirection

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_Criteria = TypeVar("_Criteria")

# The read side's orderings, registered with strawberry in place (GraphQL enum values are the member names).
strawberry.enum(SortDirection, description="Sort direction.")
strawberry.enum(InverterSort, description="Orderings of inverters.")
strawberry.enum(AccountSort, description="Orderings of accounts.")
strawberry.enum(SiteSort, description="Orderings of sites.")


UPSTREAM_ID_FIELDS = frozenset({"account_id", "site_id", "under_account_id"})
"""The filter fields naming an account or site by its upstream id: a non-positive one is refused (BAD_USER_INPUT,
as the ``alertChanged`` subscription refuses its ``siteId``), not answered with an empty page."""


def _translated(given: DataclassInstance, query: type[_Criteria],
                renames: Mapping[str, str] | None = None) -> _Criteria:
    """The read side's ``query`` filter holding every field of the GraphQL input ``given``, by name (``renames``:
    GraphQL field name to the query's, where they differ); the query's criteria GraphQL lacks keep their defaults."""
    renames = renames or {}
    return query(**{renames.get(field.name, field.name): _checked(given, field.name)
                    for field in dataclasses.fields(given)})


def _checked(given: DataclassInstance, name: str) -> Any:
    """The value of ``given``'s field ``name``, an upstream id checked (and named as GraphQL names it)."""
    value = getattr(given, name)
    if name in UPSTREAM_ID_FIELDS:
        return optional_upstream_id(value, parameter=to_camel_case(name))
    return value


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
        return _translated(self, q.InverterFilter)


@strawberry.input(description="Account criteria.")
class AccountFilter:
    under_account_id: int | None = strawberry.field(default=None, description="In this account's subtree.")
    depth: int | None = strawberry.field(default=None, description="At this depth of the hierarchy.")
    search: str | None = strawberry.field(default=None, description="Text in username, names, email, postcode.")
    removed: bool | None = strawberry.field(default=False, description="false: present; true: removed; null: both.")

    def to_query(self) -> q.AccountFilter:
        return _translated(self, q.AccountFilter)


@strawberry.input(description="Site criteria.")
class SiteFilter:
    account_id: int | None = strawberry.field(default=None, description="In this account's subtree.")
    site_status_in: list[str] | None = strawberry.field(default=None, description="Site status is one of these.")
    search: str | None = strawberry.field(default=None, description="Text in the site name or account username.")
    removed: bool | None = strawberry.field(default=False, description="false: present; true: removed; null: both.")

    def to_query(self) -> q.SiteFilter:
        return _translated(self, q.SiteFilter, {"site_status_in": "scheme_status_in"})


@strawberry.input(description="Dongle criteria.")
class DongleFilter:
    account_id: int | None = strawberry.field(default=None, description="In this account's subtree.")
    site_id: int | None = strawberry.field(default=None, description="At this site (upstream id).")
    search: str | None = strawberry.field(default=None, description="Text in the dongle or inverter serial.")
    removed: bool | None = strawberry.field(default=False, description="false: present; true: removed; null: both.")

    def to_query(self) -> q.DongleFilter:
        return _translated(self, q.DongleFilter)
