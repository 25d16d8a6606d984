"""SQL-statement budgets of the compiled path: one statement per compiled root field, whatever the page size and
nesting; a root field the compiler leaves to the resolvers costs what the resolvers cost."""

from __future__ import annotations

import json

import httpx

from service.core.principal import Principal
from service.core.roles import Role
from service.gql.compiled import answer
from service.gql.context import build_context
from service.runtime import Resources
from tests.gql.conftest import KeyedFleet, count_statements
from tests.gql.seed import NOW, SeededMirror, inverter_serial

PAGE = """{ inverters(first: 10) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node {
  id serial status lastOnline batteryNominalCapacity
  site { name inverters { serial } } account { username parent { username children(first: 2) { username } } }
  dongle { serial inverter { serial } } batteries { serial inverter { serial } } meters { address }
  history(limit: 3) { kind observedAt } } } } }"""


async def _answer(resources: Resources, seeded: SeededMirror, query: str,
                  variables: dict[str, object] | None = None) -> tuple[dict[str, object], int]:
    principal = Principal(tenant_id=seeded.tenant_id, role=Role.VIEWER)
    context = build_context(principal, resources.session_factory, request_id="req-budget", now=NOW)
    with count_statements(resources.engine) as statements:
        body = await answer(context, query, variables, None)
    assert body is not None
    return json.loads(body), statements.count


async def test_a_nested_page_is_one_statement(resources: Resources, small_fleet: SeededMirror) -> None:
    body, statements = await _answer(resources, small_fleet, PAGE)
    edges = body["data"]["inverters"]["edges"]  # type: ignore[index]
    assert len(edges) == 10
    assert all(edge["node"]["batteries"] for edge in edges)
    assert statements == 1


async def test_each_compiled_root_field_is_one_statement(resources: Resources, small_fleet: SeededMirror) -> None:
    query = """query($serial: String!) { inverter(serial: $serial) { serial site { name } batteries { serial } }
      accounts(first: 5) { totalCount edges { node { username sites { name } } } }
      sites(first: 3) { edges { node { name account { username } } } } __typename }"""
    body, statements = await _answer(resources, small_fleet, query, {"serial": inverter_serial(3)})
    assert body["data"]["inverter"]["serial"] == inverter_serial(3)  # type: ignore[index]
    assert statements == 3


async def test_a_resolver_root_field_costs_what_the_resolvers_cost(resources: Resources,
                                                                   small_fleet: SeededMirror) -> None:
    body, statements = await _answer(resources, small_fleet, "{ fleetSummary { total } dongles(first: 2) "
                                                             "{ edges { node { serial } } } }")
    assert body["data"]["fleetSummary"] == {"total": 10}  # type: ignore[index]
    assert statements == 2  # the summary's one statement, and the dongles' one


async def test_over_http_the_page_is_one_statement_besides_the_key_check(
        api_client: httpx.AsyncClient, resources: Resources, fleet_with_keys: KeyedFleet) -> None:
    with count_statements(resources.engine) as page:
        response = await api_client.post("/graphql", json={"query": PAGE}, headers=fleet_with_keys.headers("viewer"))
    assert response.status_code == 200
    assert len(response.json()["data"]["inverters"]["edges"]) == 10
    assert len([sql for sql in page.sql if "api_keys" not in sql]) == 1
