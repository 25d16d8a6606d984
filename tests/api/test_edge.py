"""Input at the edge: one set of limits for REST and GraphQL, clear 400s that name the parameter (and list the
valid values), and nothing that passes the edge can make the database fail (a 500 or an INTERNAL_SERVER_ERROR)."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar

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


async def test_malformed_ids_in_paths_are_400_problems_naming_the_path_parameter(
        api_client: httpx.AsyncClient, fleet: KeyedFleet) -> None:
    out_of_range = f"upstream_id must be an integer from 1 to {limits.MAX_UPSTREAM_ID}, got"
    for path, message in (("/api/v1/sites/abc", "upstream_id must be a whole number, got 'abc'"),
                          ("/api/v1/accounts/abc", "upstream_id must be a whole number, got 'abc'"),
                          ("/api/v1/sites/99999999999999999999", f"{out_of_range} 99999999999999999999"),
                          ("/api/v1/accounts/-3", f"{out_of_range} -3"), ("/api/v1/sites/0", f"{out_of_range} 0")):
        response = await rest(api_client, fleet, path)
        assert problem_key(response) == "upstream_id", path
        assert response.json()["detail"] == message
        assert response.json()["errors"] == [{"key": "upstream_id", "source": "path", "message": message}]
    assert (await rest(api_client, fleet, f"/api/v1/sites/{site_id(1)}")).status_code == 200
    document = (await api_client.get("/schema/openapi.json")).json()
    for path in ("/api/v1/sites/{upstream_id}", "/api/v1/accounts/{upstream_id}"):
        assert document["paths"][path]["get"]["parameters"][0]["schema"] == {
            "type": "integer", "minimum": 1, "maximum": limits.MAX_UPSTREAM_ID, "description": "An upstream id."}


async def test_a_bounded_query_parameter_out_of_range_is_told_as_graphql_tells_it(
        api_client: httpx.AsyncClient, fleet: KeyedFleet) -> None:
    for value in ("501", "5e3"):
        too_many = await rest(api_client, fleet, "/api/v1/inverters", limit=value)
        assert problem_key(too_many) == "limit"
        assert too_many.json()["detail"] == f"limit must be an integer from 0 to 500, got {value}"


async def test_every_typed_path_parameter_given_a_malformed_value_is_a_400_naming_it(
        api_client: httpx.AsyncClient, fleet: KeyedFleet) -> None:
    document = (await api_client.get("/schema/openapi.json")).json()
    checked = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            typed = [p["name"] for p in operation.get("parameters", [])
                     if p["in"] == "path" and _refuses_text(p["schema"])]
            for name in typed:
                answer = await api_client.request(method, _concrete(path.replace(f"{{{name}}}", "12x")),
                                                  headers=fleet.headers("operator"))
                assert answer.status_code == 400, (method, path, answer.text)
                assert "400" in operation["responses"], (method, path)
                assert answer.json()["errors"] == [{"key": name, "source": "path",
                                                    "message": answer.json()["detail"]}], (method, path)
                assert answer.json()["detail"].startswith(f"{name} must be a "), answer.text
                assert answer.json()["detail"].endswith(", got '12x'"), answer.text
                checked.append((method, path))
    assert len(checked) >= 25, checked  # campaigns, credentials, api keys, channels, rules, alerts, windows...
    campaign = await rest(api_client, fleet, "/api/v1/campaigns/123")
    assert campaign.json()["detail"] == "campaign_id must be a UUID, got '123'"
    day = await rest(api_client, fleet, f"/api/v1/inverters/{inverter_serial(1)}/live/data-points/june")
    assert day.json()["detail"] == "day must be a date (YYYY-MM-DD), got 'june'"
    assert (await rest(api_client, fleet, "/api/v1/no-such-thing/123")).status_code == 404
    assert (await rest(api_client, fleet, f"/api/v1/campaigns/{uuid.uuid4()}")).status_code == 404


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


@pytest.mark.parametrize(("query", "name", "value"), [
    ("{ account(upstreamId: 0) { id } }", "upstreamId", 0),
    ("{ site(upstreamId: -1) { id } }", "upstreamId", -1),
    ("{ inverters(filter: {accountId: 0}) { totalCount } }", "accountId", 0),
    ("{ inverters(filter: {siteId: -5}) { totalCount } }", "siteId", -5),
    ("{ fleetSummary(filter: {siteId: 0}) { total } }", "siteId", 0),
    ("{ accounts(filter: {underAccountId: 0}) { totalCount } }", "underAccountId", 0),
    ("{ sites(filter: {accountId: -1}) { totalCount } }", "accountId", -1),
    ("{ dongles(filter: {siteId: 0}) { totalCount } }", "siteId", 0),
    ("{ alerts(filter: {siteId: 0}) { totalCount } }", "siteId", 0),
    ("{ incidents(filter: {accountId: -1}) { totalCount } }", "accountId", -1),
])
async def test_graphql_refuses_a_non_positive_upstream_id_as_the_subscription_does(
        api_client: httpx.AsyncClient, fleet: KeyedFleet, query: str, name: str, value: int) -> None:
    body = await gql(api_client, fleet, query)
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["message"] == f"{name} must be an integer from 1 to {limits.MAX_UPSTREAM_ID}, got {value}"


async def test_graphql_upstream_id_lookups_and_filters_still_answer_valid_ids(api_client: httpx.AsyncClient,
                                                                              fleet: KeyedFleet) -> None:
    body = await gql(api_client, fleet, "query($site: Int!) { site(upstreamId: $site) { upstreamId } "
                                        "inverters(filter: {siteId: $site}) { totalCount } }", site=site_id(1))
    assert "errors" not in body, body
    assert body["data"]["site"]["upstreamId"] == site_id(1)
    assert body["data"]["inverters"]["totalCount"] >= 1


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


TYPED_VALUE_FORMATS = {"date", "date-time", "uuid"}
VALID_BY_FORMAT = {"date": "2026-06-01"}
"""A valid value of each format a required query parameter has."""


def _refuses_text(schema: dict[str, Any]) -> bool:
    """Whether a parameter of this schema refuses the text ``not-a-value`` (an enum, a number, a boolean, a date,
    a uuid, or a list or union of them)."""
    if "$ref" in schema or "enum" in schema or schema.get("format") in TYPED_VALUE_FORMATS:
        return True
    if schema.get("type") in ("integer", "number", "boolean"):
        return True
    if "items" in schema:
        return _refuses_text(schema["items"])
    return any(_refuses_text(option) for option in schema.get("oneOf", ()) if option.get("type") != "null")


def _concrete(path: str) -> str:
    """The path with every path parameter filled in by a value of its kind (no object needs to exist)."""
    for name, value in (("campaign_id", uuid.uuid4()), ("watch_id", uuid.uuid4()), ("serial", "SA0000001"),
                        ("day", "2026-06-01"), ("uuid", uuid.uuid4())):
        path = path.replace(f"{{{name}}}", str(value))
    assert "{" not in path, path
    return path


async def test_every_refused_query_parameter_is_named_as_the_caller_sent_it(
        api_client: httpx.AsyncClient, fleet: KeyedFleet) -> None:
    document = (await api_client.get("/schema/openapi.json")).json()
    checked = []
    for path, item in document["paths"].items():
        parameters = [p for p in item.get("get", {}).get("parameters", []) if p["in"] == "query"]
        names = {parameter["name"] for parameter in parameters}
        required = {parameter["name"]: VALID_BY_FORMAT[parameter["schema"]["format"]]
                    for parameter in parameters if parameter.get("required")}
        for parameter in parameters:
            if not _refuses_text(parameter["schema"]):
                continue
            answer = await rest(api_client, fleet, _concrete(path), **{**required, parameter["name"]: "not-a-value"})
            assert answer.status_code == 400, (path, parameter["name"], answer.text)
            keys = {error["key"] for error in answer.json()["errors"]}
            assert parameter["name"] in keys, (path, parameter["name"], keys)
            assert keys <= names, (path, parameter["name"], keys)
            checked.append((path, parameter["name"]))
    assert {("/api/v1/alerts", "state"), ("/api/v1/campaigns", "state"),
            ("/api/v1/campaigns/{campaign_id}/targets", "state"), ("/api/v1/incidents", "state")} <= set(checked)


async def test_a_missing_body_is_refused_clearly_unless_the_body_is_optional(
        app: Litestar, api_client: httpx.AsyncClient, fleet: KeyedFleet) -> None:
    needing, optional = [], []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            body = handler.parsed_fn_signature.parameters.get("data")
            if body is not None:
                (optional if body.has_default else needing).append((next(iter(handler.http_methods)), route))
    assert len(needing) >= 8
    assert optional
    for method, route in needing + optional:
        path = route.path_format.format(**{name: uuid.uuid4() for name in route.path_parameters})
        answer = await api_client.request(method, path, headers=fleet.headers("operator"))
        if (method, route) in optional:
            assert answer.status_code != 400, (method, path, answer.text)
        else:
            assert answer.status_code == 400, (method, path, answer.text)
            assert answer.json()["detail"] == "a JSON body is required"
            assert answer.json()["errors"] == [{"message": "a JSON body is required", "source": "body"}]


async def test_a_status_no_inverter_has_matches_nothing_in_rest_and_graphql(
        api_client: httpx.AsyncClient, fleet: KeyedFleet) -> None:
    """The cloud adds statuses (OFF_GRID, ON_GRID after v1.26): a filter value is data, never refused."""
    for params in ({"status": "OFF_GRID"}, {"battery_type": "SODIUM"}):
        answer = await rest(api_client, fleet, "/api/v1/inverters", **params)
        assert answer.status_code == 200, answer.text
        assert answer.json()["total_count"] == 0
    body = await gql(api_client, fleet, "query($s: [String!]) { inverters(filter: {statusIn: $s}) { totalCount } }",
                     s=["OFF_GRID"])
    assert body == {"data": {"inverters": {"totalCount": 0}}}
    status = next(iter(fleet.mirror.statuses.values()))
    known = await rest(api_client, fleet, "/api/v1/inverters", status=status.lower())
    assert known.json()["total_count"] == list(fleet.mirror.statuses.values()).count(status)


def _time_schema(field: dict[str, Any]) -> dict[str, Any]:
    """A field's schema without its ``null`` alternative."""
    alternatives = [schema for schema in field.get("oneOf", [field]) if schema.get("type") != "null"]
    assert len(alternatives) == 1, field
    return alternatives[0]


async def test_quiet_hours_are_documented_as_times_of_day_not_durations(api_client: httpx.AsyncClient) -> None:
    schemas = (await api_client.get("/schema/openapi.json")).json()["components"]["schemas"]
    for model in ("ChannelInput", "ChannelUpdate", "ChannelView"):
        for name in ("quiet_start", "quiet_end"):
            schema = _time_schema(schemas[model]["properties"][name])
            assert schema["type"] == "string", (model, name)
            assert "format" not in schema, (model, name)
            pattern = re.compile(schema["pattern"])
            # What the API accepts and echoes back: an offset too, when one was given.
            assert all(pattern.fullmatch(value) for value in (*schema["examples"], "07:30", "23:59:59",
                                                              "22:00:00Z", "22:00:00+01:00")), (model, name)
            assert not any(pattern.fullmatch(value) for value in ("PT22H", "24:00", "7:30")), (model, name)
    assert schemas["ChannelInput"]["properties"]["quiet_start"]["description"] == "Start of quiet hours, tenant-local."


async def test_a_query_parameter_that_is_not_utf8_is_a_400_naming_it(api_client: httpx.AsyncClient,
                                                                       fleet: KeyedFleet) -> None:
    for query in ("q=%ED%A0%80", "limit=5&q=%FF", "q=caf%C3"):
        response = await api_client.get(f"/api/v1/inverters?{query}", headers=fleet.headers("operator"))
        assert problem_key(response) == "q", query
        assert response.json()["detail"] == "q is not valid UTF-8 text"
    # A parameter named as the caller sent it, even one a handler argument is called (alerts' state is alert_state).
    response = await api_client.get("/api/v1/alerts?alert_state=%FF", headers=fleet.headers("operator"))
    assert problem_key(response) == "alert_state"
    for query in ("q=caf%C3%A9", "q=%EF%BF%BD", "q=a+b"):  # a replacement character the client meant is text
        response = await api_client.get(f"/api/v1/inverters?{query}", headers=fleet.headers("operator"))
        assert response.status_code == 200, (query, response.text)
