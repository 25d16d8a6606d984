"""Input at the edge: one set of limits for REST and GraphQL, clear 400s that name the parameter (and list the
valid values), and nothing that passes the edge can make the database fail (a 500 or an INTERNAL_SERVER_ERROR)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.core import limits
from service.runtime import Resources
from tests.gql.conftest import KeyedFleet, drop_tenant, keyed_fleet
from tests.gql.seed import inverter_serial, site_id


@pytest.fixture(scope="module")
async def fleet(resources: Resources) -> AsyncIterator[KeyedFleet]:
    seeded = await keyed_fleet(resources, inverters=12)
    yield seeded
    await drop_tenant(resources, seeded.mirror.tenant_id)


def cursor(*parts: Any) -> str:
    """A cursor as a client could forge one."""
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


async def rest(client: httpx.AsyncClient, fleet: KeyedFleet, path: str, **params: Any) -> httpx.Response:
    return await client.get(path, params=params, headers=fleet.headers("operator"))


async def gql(client: httpx.AsyncClient, fleet: KeyedFleet, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables},
                                 headers=fleet.headers("operator"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def problem_key(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    key: str = response.json()["errors"][0]["key"]
    return key


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors") or []]


OUT_OF_RANGE_CURSORS = [
    ("/api/v1/inverters", "firmware_arm", "Inverter.firmware_arm.asc", 2**31),
    ("/api/v1/accounts", "depth", "FleetAccount.depth.asc", 2**63),
    ("/api/v1/sites", "upstream_id", "Site.upstream_id.asc", 2**64),
    ("/api/v1/inverters", "last_online", "Inverter.last_online.asc", "9999-12-31T23:59:59-14:00"),
    ("/api/v1/inverters", "serial", "Inverter.serial.asc", "\ud800"),
]


@pytest.mark.parametrize(("path", "sort", "kind", "value"), OUT_OF_RANGE_CURSORS)
async def test_cursor_values_out_of_range_are_400_not_a_database_error(
        api_client: httpx.AsyncClient, fleet: KeyedFleet, path: str, sort: str, kind: str, value: Any) -> None:
    forged = cursor(kind, value, str(uuid.uuid4()))
    assert problem_key(await rest(api_client, fleet, path, sort=sort, cursor=forged)) == "cursor"
    assert problem_key(await rest(api_client, fleet, path, cursor="not-a-cursor")) == "cursor"


async def test_graphql_cursor_out_of_range_is_bad_user_input(api_client: httpx.AsyncClient,
                                                             fleet: KeyedFleet) -> None:
    forged = cursor("Inverter.firmware_arm.asc", 2**31, str(uuid.uuid4()))
    body = await gql(api_client, fleet, "query($a: String) { inverters(sort: FIRMWARE_ARM, after: $a) "
                                        "{ totalCount } }", a=forged)
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_malformed_ids_in_paths_are_400_problems(api_client: httpx.AsyncClient, fleet: KeyedFleet) -> None:
    for path, name in (("/api/v1/sites/abc", "site id"), ("/api/v1/accounts/abc", "account id"),
                       ("/api/v1/sites/99999999999999999999", "site id"), ("/api/v1/sites/0", "site id")):
        response = await rest(api_client, fleet, path)
        assert problem_key(response) == name, path
        assert "positive integer" in response.json()["detail"] or "from 1 to" in response.json()["detail"]
    assert (await rest(api_client, fleet, f"/api/v1/sites/{site_id(1)}")).status_code == 200


async def test_offline_hours_must_be_a_finite_number_of_hours(api_client: httpx.AsyncClient,
                                                               fleet: KeyedFleet) -> None:
    for value in ("nan", "inf", "-1"):
        response = await rest(api_client, fleet, "/api/v1/inverters", offline_for_hours=value)
        assert problem_key(response) == "offline_for_hours"
        assert "number of hours from 0" in response.json()["detail"]


async def test_sort_values_are_case_insensitive_and_errors_list_the_valid_ones(
        api_client: httpx.AsyncClient, fleet: KeyedFleet) -> None:
    lower = await rest(api_client, fleet, "/api/v1/inverters", sort="last_online", direction="desc")
    upper = await rest(api_client, fleet, "/api/v1/inverters", sort="LAST_ONLINE", direction="DESC")
    assert upper.status_code == 200, upper.text
    assert [i["serial"] for i in upper.json()["items"]] == [i["serial"] for i in lower.json()["items"]]
    bad = await rest(api_client, fleet, "/api/v1/inverters", sort="password")
    assert problem_key(bad) == "sort"
    assert bad.json()["errors"][0]["allowed"] == ["serial", "status", "model", "last_online", "firmware_arm",
                                                  "first_seen"]
    bad_direction = await rest(api_client, fleet, "/api/v1/sites", direction="sideways")
    assert bad_direction.json()["errors"][0]["allowed"] == ["asc", "desc"]


async def test_rest_and_graphql_share_one_set_of_limits(api_client: httpx.AsyncClient, fleet: KeyedFleet) -> None:
    longest = "x" * limits.MAX_SEARCH_LENGTH
    assert (await rest(api_client, fleet, "/api/v1/inverters", q=longest)).status_code == 200
    assert (await rest(api_client, fleet, "/api/v1/inverters", q=longest + "x")).status_code == 400
    search = "query($q: String) { inverters(filter: {search: $q}) { totalCount } }"
    assert "errors" not in await gql(api_client, fleet, search, q=longest)
    assert error_codes(await gql(api_client, fleet, search, q=longest + "x")) == ["BAD_USER_INPUT"]

    counts_only = await rest(api_client, fleet, "/api/v1/inverters", limit=0)
    assert counts_only.json()["items"] == []
    assert counts_only.json()["total_count"] == 12
    assert (await rest(api_client, fleet, "/api/v1/inverters", limit=limits.MAX_PAGE_SIZE + 1)).status_code == 400
    page = "query($n: Int) { inverters(first: $n) { totalCount edges { cursor } } }"
    assert (await gql(api_client, fleet, page, n=0))["data"]["inverters"]["totalCount"] == 12
    too_many = await gql(api_client, fleet, page, n=limits.MAX_PAGE_SIZE + 1)
    assert error_codes(too_many) == ["BAD_USER_INPUT"]
    assert "first must be an integer from 0 to 500" in too_many["errors"][0]["message"]


async def test_history_limits_are_checked_not_clamped(api_client: httpx.AsyncClient, fleet: KeyedFleet) -> None:
    query = "query($s: String!, $n: Int!) { inverter(serial: $s) { history(limit: $n) { kind } } }"
    negative = await gql(api_client, fleet, query, s=inverter_serial(1), n=-3)
    assert error_codes(negative) == ["BAD_USER_INPUT"]
    assert "limit must be an integer from 0 to 200" in negative["errors"][0]["message"]
    assert error_codes(await gql(api_client, fleet, query, s=inverter_serial(1), n=201)) == ["BAD_USER_INPUT"]
    path = f"/api/v1/inverters/{inverter_serial(1)}/history"
    assert problem_key(await rest(api_client, fleet, path, limit=-3)) == "limit"
    assert problem_key(await rest(api_client, fleet, path, limit=201)) == "limit"
    assert (await rest(api_client, fleet, path, limit=0)).json() == []
