"""/graphql over HTTP: authentication, roles, subtree restrictions, foreign ids, limits and masked errors."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from service.gql import http as gql_http
from service.mirror.queries import FleetReader
from tests.gql.conftest import KeyedFleet
from tests.gql.seed import ROOT_ACCOUNT, customer_id, inverter_serial, subcontractor_id


async def gql(client: httpx.AsyncClient, fleet: KeyedFleet, key: str, query: str,
              variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}},
                                 headers=fleet.headers(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


@pytest.mark.usefixtures("forget_auth_failures")
async def test_no_key_or_a_bad_key_is_401_problem(api_client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer gvf_nothere_nothing"}, {"Authorization": "Basic eDp5"}):
        response = await api_client.post("/graphql", json={"query": "{ viewer { role } }"}, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["request_id"]


async def test_viewer_reads_the_fleet(api_client: httpx.AsyncClient, fleet_with_keys: KeyedFleet) -> None:
    body = await gql(api_client, fleet_with_keys, "viewer",
                     "{ viewer { role tenantId } inverters(first: 5) { totalCount edges { node { serial } } } }")
    assert "errors" not in body
    assert body["data"]["viewer"] == {"role": "viewer", "tenantId": str(fleet_with_keys.mirror.tenant_id)}
    assert body["data"]["inverters"]["totalCount"] == 30


@pytest.mark.usefixtures("forget_auth_failures")
async def test_graphiql_page_loads_without_a_key_but_queries_need_one(api_client: httpx.AsyncClient,
                                                                       fleet_with_keys: KeyedFleet) -> None:
    page = await api_client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    by_get = await api_client.get("/graphql", params={"query": "{ viewer { role } }"})
    assert by_get.status_code == 401
    assert by_get.headers["content-type"].startswith("application/problem+json")
    with_key = await api_client.get("/graphql", params={"query": "{ viewer { role } }"},
                                    headers=fleet_with_keys.headers("viewer"))
    assert with_key.json() == {"data": {"viewer": {"role": "viewer"}}}


async def test_sync_runs_need_operator(api_client: httpx.AsyncClient, fleet_with_keys: KeyedFleet) -> None:
    query = "{ syncRuns(first: 5) { totalCount edges { node { id state } } } }"
    denied = await gql(api_client, fleet_with_keys, "viewer", query)
    assert codes(denied) == ["FORBIDDEN"]
    assert "operator" in denied["errors"][0]["message"]
    allowed = await gql(api_client, fleet_with_keys, "operator", query)
    assert allowed["data"]["syncRuns"]["totalCount"] == 2
    node_id = allowed["data"]["syncRuns"]["edges"][0]["node"]["id"]
    by_node = await gql(api_client, fleet_with_keys, "viewer", "query($id: ID!) { node(id: $id) { id } }",
                        {"id": node_id})
    assert codes(by_node) == ["FORBIDDEN"]


async def test_subtree_key_sees_only_its_subtree(api_client: httpx.AsyncClient,
                                                 fleet_with_keys: KeyedFleet) -> None:
    mine = set(fleet_with_keys.mirror.serials_of_subcontractor(0))
    body = await gql(api_client, fleet_with_keys, "sub_viewer", """{
        inverters(first: 100) {
          totalCount edges { node { serial account { parent { username parent { username } } } } }
        }
        accounts(first: 100) { totalCount edges { node { username } } }
        fleetSummary { total }
    }""")
    assert "errors" not in body, body
    serials = {edge["node"]["serial"] for edge in body["data"]["inverters"]["edges"]}
    assert serials == mine
    assert body["data"]["inverters"]["totalCount"] == len(mine)
    assert body["data"]["fleetSummary"]["total"] == len(mine)
    # Up the tree: the sub-contractor is visible, the installer above it is not.
    parents = {(edge["node"]["account"]["parent"]["username"], edge["node"]["account"]["parent"]["parent"])
               for edge in body["data"]["inverters"]["edges"]}
    assert parents == {("sub0", None)}
    usernames = {edge["node"]["username"] for edge in body["data"]["accounts"]["edges"]}
    assert "installer" not in usernames
    assert "sub1" not in usernames
    assert "sub0" in usernames


async def test_subtree_key_cannot_reach_outside_by_lookup_or_node(api_client: httpx.AsyncClient,
                                                                  fleet_with_keys: KeyedFleet) -> None:
    outside = inverter_serial(1)  # sub-contractor 1's customer
    full = await gql(api_client, fleet_with_keys, "viewer", "query($s: String!) { inverter(serial: $s) { id } }",
                     {"s": outside})
    node_id = full["data"]["inverter"]["id"]
    for query, variables in (
        ("query($s: String!) { inverter(serial: $s) { id } }", {"s": outside}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": node_id}),
        ("query($a: Int!) { account(upstreamId: $a) { username } }", {"a": ROOT_ACCOUNT}),
        ("query($a: Int!) { account(upstreamId: $a) { username } }", {"a": customer_id(1)}),
    ):
        body = await gql(api_client, fleet_with_keys, "sub_viewer", query, variables)
        assert codes(body) == ["NOT_FOUND"], (query, body)
    inside = await gql(api_client, fleet_with_keys, "sub_viewer",
                       "query($a: Int!) { account(upstreamId: $a) { username } }", {"a": subcontractor_id(0)})
    assert inside["data"]["account"]["username"] == "sub0"


async def test_subtree_key_filtering_on_another_subtree_gets_nothing(api_client: httpx.AsyncClient,
                                                                      fleet_with_keys: KeyedFleet) -> None:
    body = await gql(api_client, fleet_with_keys, "sub_viewer",
                     "query($a: Int!) { inverters(filter: {accountId: $a}) { totalCount } }",
                     {"a": subcontractor_id(1)})
    assert body["data"]["inverters"]["totalCount"] == 0


async def test_foreign_and_malformed_ids_are_not_found(api_client: httpx.AsyncClient, fleet_with_keys: KeyedFleet,
                                                       other_tenant: KeyedFleet) -> None:
    theirs = await gql(api_client, other_tenant, "viewer", "{ inverter(serial: \"CE00000000\") { id serial } }")
    mine = await gql(api_client, fleet_with_keys, "viewer", "{ inverter(serial: \"CE00000000\") { id serial } }")
    assert theirs["data"]["inverter"]["serial"] == mine["data"]["inverter"]["serial"] == "CE00000000"
    assert theirs["data"]["inverter"]["id"] != mine["data"]["inverter"]["id"]
    for bad in (theirs["data"]["inverter"]["id"], "not-an-id", "SW52ZXJ0ZXI6bm90LWEtdXVpZA", "", "Zm9vOmJhcg"):
        body = await gql(api_client, fleet_with_keys, "viewer", "query($id: ID!) { node(id: $id) { id } }",
                         {"id": bad})
        assert body["data"] == {"node": None}
        assert codes(body) == ["NOT_FOUND"], (bad, body)


async def test_malformed_cursor_is_a_user_error(api_client: httpx.AsyncClient, fleet_with_keys: KeyedFleet) -> None:
    body = await gql(api_client, fleet_with_keys, "viewer", "{ inverters(after: \"garbage\") { totalCount } }")
    assert codes(body) == ["BAD_USER_INPUT"]
    first = await gql(api_client, fleet_with_keys, "viewer",
                      "{ inverters(first: 2, sort: MODEL) { pageInfo { endCursor } } }")
    cursor = first["data"]["inverters"]["pageInfo"]["endCursor"]
    other_sort = await gql(api_client, fleet_with_keys, "viewer",
                           "query($c: String) { inverters(after: $c, sort: SERIAL) { totalCount } }", {"c": cursor})
    assert codes(other_sort) == ["BAD_USER_INPUT"]


async def test_too_deep_query_is_refused(api_client: httpx.AsyncClient, fleet_with_keys: KeyedFleet) -> None:
    nested = "parent { " * 14 + "username" + " }" * 14
    for _ in range(2):  # the second time, from the validation cache
        body = await gql(api_client, fleet_with_keys, "viewer",
                         f"query Deep {{ account(upstreamId: {ROOT_ACCOUNT}) {{ {nested} }} }}")
        assert body.get("data") is None
        assert "exceeds maximum operation depth" in body["errors"][0]["message"]


async def test_too_costly_query_is_refused(api_client: httpx.AsyncClient, fleet_with_keys: KeyedFleet) -> None:
    body = await gql(api_client, fleet_with_keys, "viewer", """{ inverters(first: 500) { edges { node {
        site { inverters { batteries { serial } meters { serialNumber } account { children { username } } } }
    } } } }""")
    assert body["data"] is None
    assert codes(body) == ["QUERY_TOO_COSTLY"]
    assert "exceeds the limit" in body["errors"][0]["message"]


async def test_too_many_aliases_are_refused(api_client: httpx.AsyncClient, fleet_with_keys: KeyedFleet) -> None:
    aliases = " ".join(f"a{i}: viewer {{ role }}" for i in range(30))
    body = await gql(api_client, fleet_with_keys, "viewer", f"{{ {aliases} }}")
    assert "aliases" in body["errors"][0]["message"]


async def test_unexpected_errors_are_masked_with_the_request_id(api_client: httpx.AsyncClient,
                                                                fleet_with_keys: KeyedFleet,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("connection to 10.0.0.7 failed: password authentication failed")

    monkeypatch.setattr(FleetReader, "summary", broken)
    response = await api_client.post("/graphql", json={"query": "{ fleetSummary { total } }"},
                                     headers={**fleet_with_keys.headers("viewer"), "X-Request-ID": "trace-me-123"})
    body = response.json()
    error = body["errors"][0]
    assert error["message"].startswith("Unexpected error")
    assert "10.0.0.7" not in response.text
    assert "password" not in response.text
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "request_id": "trace-me-123"}
    assert response.headers["x-request-id"] == "trace-me-123"


async def test_a_subscription_over_http_is_refused_clearly(api_client: httpx.AsyncClient,
                                                           fleet_with_keys: KeyedFleet) -> None:
    body = await gql(api_client, fleet_with_keys, "viewer", "subscription { alertChanged { kind } }")
    assert codes(body) == ["BAD_REQUEST"]
    assert "WebSocket" in body["errors"][0]["message"]


async def test_search_is_bounded_and_escaped(api_client: httpx.AsyncClient, fleet_with_keys: KeyedFleet) -> None:
    too_long = await gql(api_client, fleet_with_keys, "viewer",
                         "query($q: String) { inverters(filter: {search: $q}) { totalCount } }", {"q": "x" * 201})
    assert codes(too_long) == ["BAD_USER_INPUT"]
    wildcard = await gql(api_client, fleet_with_keys, "viewer",
                         "query($q: String) { inverters(filter: {search: $q}) { totalCount } }", {"q": "%"})
    assert wildcard["data"]["inverters"]["totalCount"] == 0  # a literal '%', not "match everything"


async def test_concurrent_posts_keep_their_own_cleanups(api_client: httpx.AsyncClient, fleet_with_keys: KeyedFleet,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """What a request schedules after its response (a live reader's client closing) runs once, for that request,
    however many POSTs await at once before falling back to the resolvers."""
    ran: Counter[str] = Counter()

    async def falls_back(context: Any, query: str, variables: dict[str, Any] | None, *_: Any, **__: Any) -> None:
        tag = (variables or {})["tag"]

        async def cleanup() -> None:
            ran[tag] += 1

        gql_http.after_response(context)(cleanup)
        await asyncio.sleep(0.05)  # the compiled attempt's own awaits (body, database) before it falls back

    monkeypatch.setattr(gql_http.compiled, "answer", falls_back)
    query = "query($tag: String) { viewer { role } }"
    answers = await asyncio.gather(*(api_client.post("/graphql", json={"query": query, "variables": {"tag": tag}},
                                                     headers=fleet_with_keys.headers("viewer"))
                                     for tag in ("a", "b", "c")))

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert ran == Counter({"a": 1, "b": 1, "c": 1})
