"""A mirrored column reaches REST and GraphQL through one read model (README: "Adding an inverter field").

What a new inverter field touches: the ORM model and a migration, the upstream record and its normaliser, and
the read model. These tests fail when one of them is missed: a column no API shows, an API field without a
column, a record field not stored, or an inverter or dongle REST view or GraphQL type that lists fields of its
own. Accounts, sites, battery modules, meters and sync runs add fields of their own to the shared ones: for them,
a shared field missing from REST or GraphQL (or out of the read model's order) fails, and for accounts, battery
modules and meters a column neither API shows.
"""

from __future__ import annotations

import types
import uuid
from datetime import UTC, datetime
from typing import Any, get_args

import pytest
from pydantic import BaseModel
from sqlalchemy import inspect
from strawberry.types.base import StrawberryObjectDefinition

from service.api.fleet import AccountView, BatteryModuleView, DongleView, InverterView, MeterView, SiteView
from service.api.sync import SyncRunView
from service.db.base import Base
from service.db.models import mirror as m
from service.gql.mirror.types import Site
from service.gql.schema import schema
from service.mirror.read_model import (
    AccountRead,
    BatteryModuleRead,
    DongleRead,
    InverterRead,
    MeterRead,
    SiteRead,
    SyncRunRead,
    field_types,
)
from service.mirror.schemas import DongleRecord, InverterRecord

INTERNAL = {"id", "tenant_id"}  # never shown: the surrogate key, and the tenant (implied by the caller)
CASES = [  # read model, ORM model, upstream record, REST view, GraphQL type, columns neither API shows
    pytest.param(InverterRead, m.Inverter, InverterRecord, InverterView, "Inverter", set(), id="inverter"),
    pytest.param(DongleRead, m.Dongle, DongleRecord, DongleView, "Dongle", {"changed_at"}, id="dongle"),
]
SHARED_CASES = [  # read model, ORM model, REST view, GraphQL type: each API adds fields of its own to the shared ones
    pytest.param(AccountRead, m.FleetAccount, AccountView, "Account", id="account"),
    pytest.param(SiteRead, m.Site, SiteView, "Site", id="site"),
    pytest.param(BatteryModuleRead, m.BatteryModule, BatteryModuleView, "BatteryModule", id="battery-module"),
    pytest.param(MeterRead, m.Meter, MeterView, "Meter", id="meter"),
    pytest.param(SyncRunRead, m.SyncRun, SyncRunView, "SyncRun", id="sync-run"),
]


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _nullable(annotation: Any) -> bool:
    return isinstance(annotation, types.UnionType) and type(None) in get_args(annotation)


def _plain_graphql_fields(graphql_type: str) -> list[str]:
    definition = schema.get_type_by_name(graphql_type)
    assert isinstance(definition, StrawberryObjectDefinition)
    return [field.name for field in definition.fields if field.base_resolver is None and field.name != "id"]


@pytest.mark.parametrize(("read_model", "orm_model", "record", "view", "graphql_type", "hidden"), CASES)
def test_every_column_is_shown_by_rest_and_graphql_from_the_read_model(
    read_model: type[object], orm_model: type[Base], record: type[Any], view: type[BaseModel],
    graphql_type: str, hidden: set[str],
) -> None:
    fields = list(field_types(read_model))
    columns = {column.key for column in inspect(orm_model).columns} - INTERNAL - hidden

    assert set(fields) == columns  # a new column without a read field (or the reverse) fails here
    assert set(record._fields) <= columns  # the normaliser's record is stored in shown columns of the same name
    assert list(view.model_fields) == fields
    assert [_camel(name) for name in _plain_graphql_fields(graphql_type)] == [_camel(name) for name in fields]


@pytest.mark.parametrize(("read_model", "orm_model"), [case.values[:2] for case in CASES + SHARED_CASES])
def test_a_read_field_is_optional_exactly_when_its_column_is_nullable(
    read_model: type[object], orm_model: type[Base]
) -> None:
    columns = inspect(orm_model).columns
    mismatched = [name for name, annotation in field_types(read_model).items()
                  if _nullable(annotation) != columns[name].nullable]
    assert mismatched == []


@pytest.mark.parametrize(("read_model", "view", "graphql_type"),
                         [pytest.param(case.values[0], *case.values[2:], id=case.id) for case in SHARED_CASES])
def test_rest_and_graphql_show_every_shared_field_in_the_read_models_order(
    read_model: type[object], view: type[BaseModel], graphql_type: str,
) -> None:
    # These add fields of their own to the shared ones; the shared ones must all be there, in one order.
    shared = [_camel(name) for name in field_types(read_model)]
    rest = [_camel(name) for name in view.model_fields]
    graphql = [_camel(name) for name in _plain_graphql_fields(graphql_type)]

    assert [name for name in rest if name in shared] == shared
    assert [name for name in graphql if name in shared] == shared


@pytest.mark.parametrize(("orm_model", "view", "graphql_type", "hidden"), [
    pytest.param(m.FleetAccount, AccountView, "Account", {"standard_timezone"}, id="account"),
    pytest.param(m.BatteryModule, BatteryModuleView, "BatteryModule", {"first_seen_at", "last_seen_at", "changed_at"},
                 id="battery-module"),
    pytest.param(m.Meter, MeterView, "Meter", {"first_seen_at", "last_seen_at", "changed_at"}, id="meter"),
])
def test_every_column_is_shown_by_rest_or_graphql(
    orm_model: type[Base], view: type[BaseModel], graphql_type: str, hidden: set[str],
) -> None:
    # GraphQL once showed every battery and meter record field as it was; a new column still needs an API field.
    columns = {column.key for column in inspect(orm_model).columns} - INTERNAL - hidden
    assert {*view.model_fields, *_plain_graphql_fields(graphql_type)} == columns


@pytest.mark.parametrize(("tz_timezone", "graphql_timezone"), [("Europe/Astrakhan", "Europe/Astrakhan"),
                                                                (None, "GMT +4")])
def test_a_sites_timezone_is_upstreams_label_over_rest_and_its_iana_name_when_known_over_graphql(
    tz_timezone: str | None, graphql_timezone: str,
) -> None:
    # The one shared site field each adapter fills in its own way (SiteRead); neither may drift to the other.
    seen = datetime(2026, 12, 1, tzinfo=UTC)
    row = m.Site(id=uuid.uuid4(), upstream_id=7, timezone="GMT +4", tz_timezone=tz_timezone, products=[],
                 first_seen_at=seen, last_seen_at=seen)

    assert SiteView.model_validate(row).timezone == "GMT +4"
    assert Site.from_row(row).timezone == graphql_timezone
