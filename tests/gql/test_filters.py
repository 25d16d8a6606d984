"""The GraphQL filter inputs hand every criterion to the read side's filters, by name."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from service.core.errors import InvalidParameterError
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
    values = {field.name: 1000 + index if field.name in gql.UPSTREAM_ID_FIELDS else object()  # each distinct
              for index, field in enumerate(dataclasses.fields(given))}
    translated = given(**values).to_query()
    assert isinstance(translated, query)
    for name, value in values.items():
        assert getattr(translated, renames.get(name, name)) is value, name


@pytest.mark.parametrize(("given", "query"), [(given, query) for given, query, _ in TRANSLATIONS], ids=NAMES)
def test_an_omitted_graphql_criterion_means_the_query_default(given: type[Any], query: type[Any]) -> None:
    """An empty filter reads what the read side reads by default: e.g. only rows still present upstream."""
    assert given().to_query() == query()
    assert given().to_query().removed is False


@pytest.mark.parametrize("given", [given for given, _, _ in TRANSLATIONS], ids=NAMES)
def test_every_upstream_id_criterion_refuses_a_non_positive_id_by_its_graphql_name(given: type[Any]) -> None:
    ids = [field.name for field in dataclasses.fields(given) if field.name.endswith("_id")]
    assert ids
    assert set(ids) <= gql.UPSTREAM_ID_FIELDS
    for name in ids:
        with pytest.raises(InvalidParameterError) as refused:
            given(**{name: 0}).to_query()
        graphql_name = {"account_id": "accountId", "site_id": "siteId", "under_account_id": "underAccountId"}[name]
        assert refused.value.parameter == graphql_name
        assert str(refused.value).startswith(f"{graphql_name} must be an integer from 1 to ")
