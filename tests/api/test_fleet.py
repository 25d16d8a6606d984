"""REST reads of the mirror: filters, cursor pagination, scoping, 404/422 problems."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.runtime import Resources
from tests.gql.conftest import KeyedFleet, drop_tenant, keyed_fleet
from tests.gql.seed import ROOT_ACCOUNT, customer_id, inverter_serial, site_id, subcontractor_id


@pytest.fixture(scope="module")
async def fleet(resources: Resources) -> AsyncIterator[KeyedFleet]:
    seeded = await keyed_fleet(resources, inverters=40)
    yield seeded
    await drop_tenant(resources, seeded.mirror.tenant_id)


async def get(client: httpx.AsyncClient, fleet: KeyedFleet, path: str, key: str = "viewer",
              **params: Any) -> httpx.Response:
    return await client.get(path, params=params, headers=fleet.headers(key))


async def test_inverters_pages_cover_the_filter_exactly_once(api_client: httpx.AsyncClient,
                                                             fleet: KeyedFleet) -> None:
    expected = sorted(s for s, status in fleet.mirror.statuses.items() if status in {"ERROR", "LOST"})
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"status": ["ERROR", "LOST"], "limit": 3, "sort": "last_online"}
        if cursor:
            params["cursor"] = cursor
        response = await get(api_client, fleet, "/api/v1/inverters", **params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total_count"] == len(expected)
        seen += [item["serial"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == expected
    assert len(set(seen)) == len(seen)


async def test_inverter_detail_and_history(api_client: httpx.AsyncClient, fleet: KeyedFleet) -> None:
    response = await get(api_client, fleet, f"/api/v1/inverters/{inverter_serial(3)}")
    assert response.status_code == 200
    body = response.json()
    assert (body["battery_nominal_voltage"], body["max_charge_rate"], body["warranty_type"]) == (
        51.2, 3600.0, "standard")
    assert [b["position"] for b in body["batteries"]] == [0, 1]
    assert body["meters"][0]["serial_number"] == "EM00000003"
    history = (await get(api_client, fleet, f"/api/v1/inverters/{inverter_serial(3)}/history")).json()
    assert history[0]["to_value"] == fleet.mirror.statuses[inverter_serial(3)]


async def test_search_and_subtree_filters(api_client: httpx.AsyncClient, fleet: KeyedFleet) -> None:
    by_postcode = (await get(api_client, fleet, "/api/v1/inverters", q="omer7")).json()
    assert [item["serial"] for item in by_postcode["items"]] == [inverter_serial(7)]
    sub = (await get(api_client, fleet, "/api/v1/inverters", account_id=subcontractor_id(2), limit=100)).json()
    assert {item["serial"] for item in sub["items"]} == set(fleet.mirror.serials_of_subcontractor(2))
    site = (await get(api_client, fleet, "/api/v1/dongles", site_id=site_id(5))).json()
    assert [item["serial"] for item in site["items"]] == ["WF00000005"]


async def test_summary_counts(api_client: httpx.AsyncClient, fleet: KeyedFleet) -> None:
    body = (await get(api_client, fleet, "/api/v1/fleet/summary")).json()
    assert body["total"] == 40
    assert sum(bucket["count"] for bucket in body["by_status"]) == 40
    assert set(body["offline_for_more_than_hours"]) == {"1", "24", "168"}


async def test_subtree_key_is_confined(api_client: httpx.AsyncClient, fleet: KeyedFleet) -> None:
    listed = (await get(api_client, fleet, "/api/v1/inverters", key="sub_viewer", limit=100)).json()
    assert {item["serial"] for item in listed["items"]} == set(fleet.mirror.serials_of_subcontractor(0))
    for path in (f"/api/v1/inverters/{inverter_serial(1)}", f"/api/v1/accounts/{ROOT_ACCOUNT}",
                 f"/api/v1/accounts/{customer_id(1)}", f"/api/v1/sites/{site_id(1)}"):
        response = await get(api_client, fleet, path, key="sub_viewer")
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["request_id"]
    assert (await get(api_client, fleet, f"/api/v1/sites/{site_id(3)}", key="sub_viewer")).status_code == 200


async def test_roles_and_bad_input(api_client: httpx.AsyncClient, fleet: KeyedFleet) -> None:
    assert (await get(api_client, fleet, "/api/v1/sync-runs")).status_code == 403
    runs = await get(api_client, fleet, "/api/v1/sync-runs", key="operator")
    assert runs.json()["total_count"] == 2
    bad_cursor = await get(api_client, fleet, "/api/v1/inverters", cursor="nope")
    assert bad_cursor.status_code == 400
    assert bad_cursor.json()["detail"] == "malformed cursor"
    bad_sort = await get(api_client, fleet, "/api/v1/inverters", sort="password")
    assert bad_sort.status_code == 400
    assert bad_sort.json()["errors"][0]["key"] == "sort"
    too_many = await get(api_client, fleet, "/api/v1/inverters", limit=100000)
    assert too_many.status_code == 400
    assert (await api_client.get("/api/v1/inverters")).status_code == 401
