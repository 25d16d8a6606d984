"""Input the API does not take is refused, never silently ignored: every request body of the OpenAPI document
refuses a field it does not declare, and every operation refuses a query parameter it does not declare, naming it
and listing the ones it takes, or one that takes one value given twice. All are checked before a handler runs, so
no upstream is needed."""

from __future__ import annotations

import enum
import uuid
from typing import Any

import httpx
import pytest

from service.core.roles import Role
from service.db.models.campaign import CampaignState, TargetState
from service.db.models.monitoring import AlertState, IncidentState, Severity
from service.runtime import Resources
from tests.tenants.factories import TenantWithKey, committed_tenant

pytestmark = pytest.mark.usefixtures("clean_db")

UNEXPECTED = "unexpected_name"
PATH_VALUES = {"uuid": str(uuid.uuid4()), "date": "2026-06-01"}
"""A well-formed value of a path parameter, by its OpenAPI format (anything else: a short string)."""


@pytest.fixture
async def admin(resources: Resources) -> TenantWithKey:
    return await committed_tenant(resources, Role.ADMIN)


async def _operations(api_client: httpx.AsyncClient) -> list[tuple[str, str, dict[str, Any]]]:
    """``(method, concrete path, operation)`` of every REST operation of the OpenAPI document (GraphQL aside: it
    has its own transport rules)."""
    document = (await api_client.get("/schema/openapi.json")).json()
    operations: list[tuple[str, str, dict[str, Any]]] = []
    for template, item in document["paths"].items():
        if template.startswith("/graphql"):
            continue
        for method, operation in item.items():
            path = template
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    value = PATH_VALUES.get(parameter["schema"].get("format"), "1")
                    path = path.replace(f"{{{parameter['name']}}}", value)
            operations.append((method.upper(), path, operation))
    return operations


async def test_every_request_body_refuses_a_field_it_does_not_declare(api_client: httpx.AsyncClient,
                                                                     admin: TenantWithKey) -> None:
    with_bodies = []
    for method, path, operation in await _operations(api_client):
        if "requestBody" not in operation:
            continue
        with_bodies.append(f"{method} {path}")
        refused = await api_client.request(method, path, json={UNEXPECTED: 1}, headers=admin.headers)
        assert refused.status_code == 400, (method, path, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert {"key": UNEXPECTED, "message": "Extra inputs are not permitted"} in [
            {"key": error.get("key"), "message": error.get("message")} for error in refused.json()["errors"]
        ], (method, path, refused.text)
    assert {"POST /api/v1/notifications/channels", "POST /api/v1/notifications/rules",
            "POST /api/v1/maintenance-windows", "POST /api/v1/sync-runs", "POST /api/v1/api-keys",
            "POST /api/v1/credentials", "PATCH /api/v1/monitoring/settings"} <= set(with_bodies)
    assert any(body.endswith("/acknowledge") for body in with_bodies)


async def test_a_channel_with_an_unknown_field_is_not_created(api_client: httpx.AsyncClient,
                                                              admin: TenantWithKey) -> None:
    refused = await api_client.post("/api/v1/notifications/channels", headers=admin.headers,
                                json={"kind": "givenergy", "name": "app", "extra": 1})
    assert refused.status_code == 400, refused.text
    assert [error["key"] for error in refused.json()["errors"]] == ["extra"]
    assert (await api_client.get("/api/v1/notifications/channels", headers=admin.headers)).json() == []


async def test_every_operation_refuses_a_query_parameter_it_does_not_declare_and_lists_those_it_takes(
        api_client: httpx.AsyncClient, admin: TenantWithKey) -> None:
    checked = 0
    for method, path, operation in await _operations(api_client):
        takes = sorted(parameter["name"] for parameter in operation.get("parameters", [])
                       if parameter["in"] == "query")
        refused = await api_client.request(method, path, params={UNEXPECTED: "1"}, headers=admin.headers)
        assert refused.status_code == 400, (method, path, refused.text)
        assert refused.json()["errors"] == [{
            "key": UNEXPECTED, "source": "query", "allowed": takes,
            "message": f"unknown query parameter {UNEXPECTED!r}: " + (f"it takes {', '.join(takes)}" if takes
                                                                       else "it takes none")}], (method, path)
        checked += 1
    assert checked > 60


def _takes_list(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "array" or any(_takes_list(option) for option in schema.get("oneOf", ()))


async def test_every_operation_refuses_a_single_valued_query_parameter_given_twice(
        api_client: httpx.AsyncClient, admin: TenantWithKey) -> None:
    single, lists = [], []
    for method, path, operation in await _operations(api_client):
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "query":
                continue
            name = parameter["name"]
            if _takes_list(parameter["schema"]):
                lists.append(name)
                continue
            refused = await api_client.request(method, path, params=[(name, "1"), (name, "2")], headers=admin.headers)
            message = f"{name} is given twice; it takes one value"
            assert refused.status_code == 400, (method, path, name, refused.text)
            assert refused.json()["detail"] == message, (method, path, name)
            assert refused.json()["errors"] == [{"key": name, "source": "query", "message": message}]
            single.append(f"{method} {path} {name}")
    assert {"GET /api/v1/inverters limit", "GET /api/v1/alerts inverter"} <= set(single)
    assert {"state", "severity", "site_status"} <= set(lists)


async def test_a_misspelt_filter_is_refused_instead_of_answering_the_whole_fleet(
        api_client: httpx.AsyncClient, admin: TenantWithKey) -> None:
    misspelt = await api_client.get("/api/v1/inverters", params={"stauts": "LOST"}, headers=admin.headers)
    assert misspelt.status_code == 400
    assert misspelt.json()["detail"].startswith("unknown query parameter 'stauts': it takes account_id, ")
    assert "status" in misspelt.json()["errors"][0]["allowed"]
    paging = await api_client.get("/api/v1/inverters", params={"offset": "100"}, headers=admin.headers)
    assert (paging.status_code, paging.json()["errors"][0]["key"]) == (400, "offset")
    blank = await api_client.get("/api/v1/me?verbose", headers=admin.headers)
    assert (blank.status_code, blank.json()["detail"]) == (400, "unknown query parameter 'verbose': it takes none")

    spelt = await api_client.get("/api/v1/inverters", params={"status": "LOST", "limit": "5"}, headers=admin.headers)
    assert spelt.status_code == 200, spelt.text
    repeated = await api_client.get("/api/v1/alerts", params=[("state", "open"), ("state", "cleared")],
                                headers=admin.headers)
    assert repeated.status_code == 200, repeated.text


async def test_graphql_and_the_docs_pages_keep_their_query_strings_open(api_client: httpx.AsyncClient,
                                                                        admin: TenantWithKey) -> None:
    over_get = await api_client.get("/graphql", params={"query": "{ __typename }"},
                                headers=admin.headers)
    assert (over_get.status_code, over_get.json()) == (200, {"data": {"__typename": "Query"}}), over_get.text
    for page in ("/schema/openapi.json", "/schema/swagger", "/healthz"):
        assert (await api_client.get(page, params={"v": "2"})).status_code == 200, page


@pytest.mark.parametrize(("path", "parameter", "options", "takes_list"), [
    ("/api/v1/alerts", "state", AlertState, True), ("/api/v1/alerts", "severity", Severity, True),
    ("/api/v1/alerts/counts", "state", AlertState, True), ("/api/v1/incidents", "state", IncidentState, True),
    ("/api/v1/campaigns", "state", CampaignState, False),
    (f"/api/v1/campaigns/{uuid.uuid4()}/targets", "state", TargetState, True),
])
async def test_a_value_outside_an_enum_parameter_is_named_with_the_valid_values(
        api_client: httpx.AsyncClient, admin: TenantWithKey, path: str, parameter: str,
        options: type[enum.Enum], takes_list: bool) -> None:
    allowed = [str(member.value) for member in options]
    valid_first = [(parameter, allowed[0])] if takes_list else []
    refused = await api_client.get(path, params=[*valid_first, (parameter, "bogus")], headers=admin.headers)
    message = f"{parameter} must be one of {', '.join(allowed)}; got 'bogus'"
    assert (refused.status_code, refused.json()["detail"]) == (400, message)
    assert refused.json()["errors"] == [{"key": parameter, "source": "query", "message": message, "allowed": allowed}]
