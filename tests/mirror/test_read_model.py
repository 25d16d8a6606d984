"""A mirrored column reaches REST and GraphQL through one read model (README: "Adding an inverter field").

What a new inverter field touches: the ORM model and a migration, the upstream record and its normaliser, and
the read model. These tests fail when one of them is missed: a column no API shows, an API field without a
column, a record field not stored, or a REST view or GraphQL type that lists fields of its own.
"""

from __future__ import annotations

import types
from typing import Any, get_args

import pytest
from pydantic import BaseModel
from sqlalchemy import inspect
from strawberry.types.base import StrawberryObjectDefinition

from service.api.fleet import DongleView, InverterView
from service.db.base import Base
from service.db.models import mirror as m
from service.gql.schema import schema
from service.mirror.read_model import INVERTER_FIELD_COLUMNS, DongleRead, InverterRead, field_columns, field_types
from service.mirror.schemas import DongleRecord, InverterRecord

INTERNAL = {"id", "tenant_id"}  # never shown: the surrogate key, and the tenant (implied by the caller)
CASES = [  # read model, ORM model, upstream record, REST view, GraphQL type, columns neither API shows
    pytest.param(InverterRead, m.Inverter, InverterRecord, InverterView, "Inverter", set(), id="inverter"),
    pytest.param(DongleRead, m.Dongle, DongleRecord, DongleView, "Dongle", {"changed_at"}, id="dongle"),
]


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _nullable(annotation: Any) -> bool:
    return isinstance(annotation, types.UnionType) and type(None) in get_args(annotation)


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
    definition = schema.get_type_by_name(graphql_type)
    assert isinstance(definition, StrawberryObjectDefinition)
    plain = [field.name for field in definition.fields if field.base_resolver is None and field.name != "id"]
    assert [_camel(name) for name in plain] == [_camel(name) for name in fields]


@pytest.mark.parametrize(("read_model", "orm_model"), [case.values[:2] for case in CASES])
def test_a_read_field_is_optional_exactly_when_its_column_is_nullable(
    read_model: type[object], orm_model: type[Base]
) -> None:
    columns = field_columns(read_model, orm_model)
    mismatched = [name for name, annotation in field_types(read_model).items()
                  if _nullable(annotation) != columns[name].nullable]
    assert mismatched == []


def test_the_inverter_field_column_table_names_mirror_inverters_columns() -> None:
    assert {column.table.name for column in (attribute.property.columns[0]
                                             for attribute in INVERTER_FIELD_COLUMNS.values())} == {"mirror_inverters"}
    assert INVERTER_FIELD_COLUMNS["firmware_arm"] is m.Inverter.firmware_arm
