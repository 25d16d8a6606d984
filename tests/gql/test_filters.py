"""The GraphQL filter inputs hand every criterion to the read side's filters, by name."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from service.gql.mirror import filters as gql
from service.mirror import queries as q

# GraphQL input, the read side's filter, and the GraphQL fields whose criterion is named otherwise there.
TRANSLATIONS: list[tuple[type[Any], type[Any], dict[str, str]]] = [
    (gql.InverterFilter, q.InverterFilter, {}),
    (gql.AccountFilter, q.AccountFilter, {}),
    (gql.SiteFilter, q.SiteFilter, {"site_status_in": "scheme_status_in"}),
    (gql.DongleFilter, q.DongleFilter, {}),
]
NAMES = [given.__name__ for given, _, _ in TRANSLATIONS]


@pytest.mark.parametrize(("given", "query", "renames"), TRANSLATIONS, ids=NAMES)
def test_every_graphql_filter_field_reaches_the_query(given: type[Any], query: type[Any],
                                                       renames: dict[str, str]) -> None:
    values = {field.name: object() for field in dataclasses.fields(given)}  # one distinct value per field
    translated = given(**values).to_query()
    assert isinstance(translated, query)
    for name, value in values.items():
        assert getattr(translated, renames.get(name, name)) is value, name


@pytest.mark.parametrize(("given", "query"), [(given, query) for given, query, _ in TRANSLATIONS], ids=NAMES)
def test_an_omitted_graphql_criterion_means_the_query_default(given: type[Any], query: type[Any]) -> None:
    """An empty filter reads what the read side reads by default: e.g. only rows still present upstream."""
    assert given().to_query() == query()
    assert given().to_query().removed is False
