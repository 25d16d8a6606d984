"""/graphql refuses what is not an operation in the GraphQL error format, caps what a document may cost before
the expensive step, and never keeps a big document in memory."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import parse
from sqlalchemy import func, select

from service.core import limits
from service.db.models.mirror import FleetAccount
from service.gql.limits import MAX_COST, cached_parse, operation_cost
from service.runtime import Resources
from tests.gql.conftest import KeyedFleet, drop_tenant, run, seed_committed
from tests.gql.seed import SeededMirror, subcontractor_id


async def post(client: httpx.AsyncClient, fleet: KeyedFleet, body: bytes,
               content_type: str = "application/json") -> httpx.Response:
    return await client.post("/graphql", content=body,
                             headers={**fleet.headers("viewer"), "content-type": content_type})


def transport_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    [error] = response.json()["errors"]
    assert error["extensions"]["request_id"] == response.headers["x-request-id"]
    extensions: dict[str, Any] = error["extensions"]
    return {"message": error["message"], **extensions}


@pytest.mark.parametrize("body", [b"null", b'"{ viewer { role } }"', b"[1]", b"\xff\xfe{}", b"{not json",
                                  json.dumps({"query": "{ viewer { role } }", "variables": {"v": "\ud800"}}).encode()])
async def test_bodies_that_are_not_an_operation_are_400_in_graphql_format(
        api_client: httpx.AsyncClient, fleet_with_keys: KeyedFleet, body: bytes) -> None:
    assert transport_error(await post(api_client, fleet_with_keys, body), 400)["code"] == "BAD_REQUEST"


async def test_wrong_content_type_is_a_graphql_error(api_client: httpx.AsyncClient,
                                                     fleet_with_keys: KeyedFleet) -> None:
    refused = transport_error(await post(api_client, fleet_with_keys, b"{ viewer { role } }", "text/plain"), 400)
    assert "content type" in refused["message"].lower()


async def test_syntax_errors_carry_a_code_and_the_request_id(api_client: httpx.AsyncClient,
                                                             fleet_with_keys: KeyedFleet) -> None:
    response = await post(api_client, fleet_with_keys, json.dumps({"query": "{ viewer { role } "}).encode())
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "GRAPHQL_PARSE_FAILED", "request_id": response.headers["x-request-id"]}


async def test_a_huge_document_is_refused_by_the_body_cap(api_client: httpx.AsyncClient,
                                                         fleet_with_keys: KeyedFleet) -> None:
    document = "{ " + "viewer { role } " * 500_000 + "}"  # 7.6 MB, as in the probe
    refused = transport_error(await post(api_client, fleet_with_keys, json.dumps({"query": document}).encode()),
                              413)
    assert refused["code"] == "REQUEST_TOO_LARGE"


async def test_a_document_over_the_token_limit_is_refused_while_parsing(api_client: httpx.AsyncClient,
                                                                        fleet_with_keys: KeyedFleet) -> None:
    document = "{ " + "viewer { role } " * 2_000 + "}"  # 32 KB: under the body cap, over the token limit
    assert len(document) < limits.MAX_GRAPHQL_BODY_BYTES
    response = await post(api_client, fleet_with_keys, json.dumps({"query": document}).encode())
    [error] = response.json()["errors"]
    assert "tokens" in error["message"]
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_only_small_documents_are_kept_in_the_parse_cache(api_client: httpx.AsyncClient,
                                                                fleet_with_keys: KeyedFleet) -> None:
    padding = "#" + "x" * (limits.CACHED_DOCUMENT_BYTES + 10) + "\n"  # a big comment: few tokens, many bytes
    big = padding + "{ viewer { role } }"
    cached_parse.cache_clear()  # earlier tests may have filled it: a full cache would take no new document
    before = cached_parse.cache_info().currsize
    response = await post(api_client, fleet_with_keys, json.dumps({"query": big}).encode())
    assert response.json() == {"data": {"viewer": {"role": "viewer"}}}
    assert cached_parse.cache_info().currsize == before, "the big document was not cached"
    small = "{ viewer { role tenantId } }"
    await post(api_client, fleet_with_keys, json.dumps({"query": small}).encode())
    assert cached_parse.cache_info().currsize == before + 1


def test_cost_counts_variable_defaults() -> None:
    query = parse("query($n: Int = 500) { accounts(first: $n) { edges { node { children { username } } } } }")
    assert operation_cost(query, None, {}) == operation_cost(query, None, {"n": 500}) > MAX_COST
    assert operation_cost(query, None, {"n": 5}) < MAX_COST


async def test_the_default_bypass_is_refused(api_client: httpx.AsyncClient, fleet_with_keys: KeyedFleet) -> None:
    query = "query($n: Int = 500) { accounts(first: $n) { edges { node { children { username } } } } }"
    response = await post(api_client, fleet_with_keys, json.dumps({"query": query}).encode())
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["QUERY_TOO_COSTLY"]


@pytest.fixture(scope="module")
async def crowded_account(resources: Resources) -> AsyncIterator[SeededMirror]:
    """A mirror whose one sub-contractor has 120 customers: more than a nested list may return."""
    seeded = await seed_committed(resources, 120, subcontractors=1)
    yield seeded
    await drop_tenant(resources, seeded.tenant_id)


async def test_nested_lists_return_at_most_what_the_cost_counted(resources: Resources,
                                                                 crowded_account: SeededMirror) -> None:
    parent, tenant_id = subcontractor_id(0), crowded_account.tenant_id
    async with resources.session_factory() as session:
        customers = (await session.execute(select(func.count()).select_from(FleetAccount).where(
            FleetAccount.tenant_id == tenant_id, FleetAccount.parent_upstream_id == parent))).scalar_one()
    assert customers > limits.MAX_NESTED_LIST

    async def children(first: int | None) -> list[Any]:
        result = await run(resources, tenant_id, "query($id: Int!, $n: Int) { account(upstreamId: $id) "
                           "{ children(first: $n) { upstreamId } } }", {"id": parent, "n": first})
        assert result.errors is None, result.errors
        rows: list[Any] = result.data["account"]["children"]
        return rows

    assert len(await children(None)) == limits.MAX_NESTED_LIST
    assert len(await children(3)) == 3
    assert len(await children(limits.MAX_PAGE_SIZE)) == customers
    refused = await run(resources, tenant_id, f"{{ account(upstreamId: {parent}) "
                        "{ children(first: 501) { upstreamId } } }")
    assert refused.errors[0].extensions["code"] == "BAD_USER_INPUT"
