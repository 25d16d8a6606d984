"""Guards of the compiled path: a document whose fragments multiply is left to the resolvers, the plan cache keeps
to its byte bound and lifts no cost limit, a compiler failure falls back instead of a 500, and both paths agree on
ambiguous relations."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from graphql import parse
from sqlalchemy import update

from service.core import limits
from service.core.principal import Principal
from service.core.roles import Role
from service.db.models import mirror as m
from service.gql.compiled import answer, builder, executor
from service.gql.context import build_context
from service.gql.limits import MAX_COST, operation_cost
from service.runtime import Resources
from tests.gql.conftest import KeyedFleet, drop_tenant, run, seed_committed
from tests.gql.seed import NOW, SeededMirror, inverter_serial


def _reentering(levels: int) -> str:
    """Fragments that re-enter Inverter through its dongle, site and account at each of ``levels``."""
    fragments = ["fragment L0 on Inverter { serial status }"]
    for level in range(1, levels + 1):
        inner = f"...L{level - 1}"
        fragments.append(
            f"fragment L{level} on Inverter {{ serial status dongle {{ serial inverter {{ {inner} }} }} "
            f"site {{ name inverters(first: 1) {{ {inner} }} }} "
            f"account {{ username inverters(first: 1) {{ {inner} }} }} }}")
    return "{ inverters(first: 2) { edges { node { ...L%d } } } }\n" % levels + "\n".join(fragments)  # noqa: UP031


async def _compiled(resources: Resources, tenant_id: Any, query: str, *, restricted: str | None = None,
                    variables: dict[str, Any] | None = None) -> bytes | None:
    principal = Principal(tenant_id=tenant_id, role=Role.VIEWER, restricted_account_id=restricted)
    context = build_context(principal, resources.session_factory, request_id="req-guards", now=NOW)
    return await answer(context, query, variables, None)


async def test_a_document_whose_fragments_multiply_is_left_to_the_resolvers(
        resources: Resources, small_fleet: SeededMirror) -> None:
    query = _reentering(4)
    assert operation_cost(parse(query), None, None) <= MAX_COST
    assert await _compiled(resources, small_fleet.tenant_id, query) is None  # over the node cap: not compiled
    result = await run(resources, small_fleet.tenant_id, query)
    assert result.errors is None
    node = result.data["inverters"]["edges"][0]["node"]
    assert node["dongle"]["inverter"]["dongle"]["inverter"]["serial"] == inverter_serial(0)


async def test_the_plan_cache_keeps_to_its_byte_bound(resources: Resources, small_fleet: SeededMirror,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cache = executor.PlanCache(executor.MAX_PLAN_BYTES)
    monkeypatch.setattr(executor, "_PLANS", cache)
    for size in range(1, 9):
        query = "{ inverters(first: %d) { edges { node { serial site { name } dongle { serial } } } } }" % size  # noqa: UP031
        body = await _compiled(resources, small_fleet.tenant_id, query)
        assert body is not None
        assert len(json.loads(body)["data"]["inverters"]["edges"]) == size
        if size == 1:
            cache.max_bytes = cache.bytes * 3 + cache.bytes // 2  # room for three such plans
        assert cache.bytes <= cache.max_bytes
    assert len(cache) == 3  # the oldest went, the newest stayed
    assert await _compiled(resources, small_fleet.tenant_id, query) is not None


async def test_a_cached_plan_is_no_way_past_the_cost_limit(resources: Resources, small_fleet: SeededMirror) -> None:
    query = ("query($serial: String!, $n: Int) { inverter(serial: $serial) { serial } "
             "accounts(first: $n) { edges { node { children { username } } } } }")
    for serial in (inverter_serial(0), inverter_serial(1)):  # the second is answered by the plan the first cached
        assert await _compiled(resources, small_fleet.tenant_id, query, variables={"serial": serial, "n": 5})
    # A larger page shapes another plan, and costs too much: the resolvers refuse it (QUERY_TOO_COSTLY).
    assert await _compiled(resources, small_fleet.tenant_id, query,
                           variables={"serial": inverter_serial(2), "n": 500}) is None


async def test_a_subtree_key_filtering_on_the_negated_root_is_refused_as_the_resolvers_refuse_it(
        api_client: httpx.AsyncClient, fleet_with_keys: KeyedFleet) -> None:
    query = "{ inverters(filter: {accountId: -2000}) { totalCount edges { node { serial } } } }"
    response = await api_client.post("/graphql", json={"query": query}, headers=fleet_with_keys.headers("sub_viewer"))
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert [(error["message"], error["extensions"]["code"]) for error in body["errors"]] == [
        (f"accountId must be an integer from 1 to {limits.MAX_UPSTREAM_ID}, got -2000", "BAD_USER_INPUT")]


async def test_an_unexpected_compiler_failure_falls_back_to_the_resolvers(
        api_client: httpx.AsyncClient, fleet_with_keys: KeyedFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("a compiler bug")

    monkeypatch.setattr(builder.Builder, "connection", broken)
    query = "{ inverters(first: 2) { totalCount } }"
    response = await api_client.post("/graphql", json={"query": query}, headers=fleet_with_keys.headers("viewer"))
    assert response.status_code == 200
    assert response.json() == {"data": {"inverters": {"totalCount": 30}}}


@pytest.fixture(scope="module")
async def moved_dongles(resources: Resources) -> AsyncIterator[SeededMirror]:
    """Four inverters; dongle 0 moved from the removed inverter 0 to inverter 1, dongle 2 from the removed
    inverter 2 to inverter 3 (rows updated in both orders, so neither physical order hides a wrong pick)."""
    seeded = await seed_committed(resources, 4)
    inverters = m.Inverter.__table__
    tenant = inverters.c.tenant_id == seeded.tenant_id
    async with resources.engine.begin() as connection:
        for removed, present in ((0, 1), (2, 3)):
            steps = [update(inverters).where(tenant, inverters.c.serial == inverter_serial(removed))
                     .values(removed_at=NOW, last_seen_at=NOW - timedelta(days=1)),
                     update(inverters).where(tenant, inverters.c.serial == inverter_serial(present))
                     .values(dongle_serial=f"WF{removed:08d}", last_seen_at=NOW - timedelta(days=2))]
            for step in steps if removed == 0 else reversed(steps):
                await connection.execute(step)
    yield seeded
    await drop_tenant(resources, seeded.tenant_id)


async def test_a_moved_dongle_names_its_present_inverter_on_both_paths(
        resources: Resources, moved_dongles: SeededMirror) -> None:
    query = '{ dongles(first: 4) { edges { node { serial inverter { serial } } } } }'
    compiled = await _compiled(resources, moved_dongles.tenant_id, query)
    assert compiled is not None
    resolved = await run(resources, moved_dongles.tenant_id, query)
    expected = {"WF00000000": inverter_serial(1), "WF00000002": inverter_serial(3)}
    for data in (json.loads(compiled)["data"], resolved.data):
        named = {edge["node"]["serial"]: edge["node"]["inverter"] for edge in data["dongles"]["edges"]}
        assert {serial: named[serial]["serial"] for serial in expected} == expected
