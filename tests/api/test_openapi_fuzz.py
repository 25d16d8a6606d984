"""schemathesis against a running server: every REST operation of the OpenAPI document and the GraphQL schema
(bounded examples), with a real key over a seeded mirror; no answer may be a server error, and REST answers
(fleet, live and access operations) must conform to the document: documented statuses, bodies and headers.

The app runs under uvicorn in a thread with resources of its own (asyncpg connections belong to one loop). Its
upstream clients reach a simulator in-process, so fuzzed credential checks never leave the machine.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import graphql
import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from schemathesis.checks import ignored_auth, not_a_server_error, positive_data_acceptance

from service.app import create_app
from service.core.roles import Role
from service.runtime import Resources
from service.settings import Settings
from service.upstream import Route
from tests.gql.conftest import KeyedFleet, drop_tenant, keyed_fleet
from tests.tenants.factories import make_key, quiet_simulator

MAX_EXAMPLES = 25
JsonValue = None | bool | int | float | str | list[Any] | dict[str, Any]


def _json_node(value: JsonValue) -> graphql.ValueNode:
    """A JSON value as a GraphQL literal (for arguments of the ``JSON`` scalar, e.g. a campaign spec)."""
    if value is None:
        return graphql.NullValueNode()
    if isinstance(value, bool):
        return graphql.BooleanValueNode(value=value)
    if isinstance(value, int):
        return graphql.IntValueNode(value=str(value))
    if isinstance(value, float):
        return graphql.FloatValueNode(value=repr(value))
    if isinstance(value, str):
        return graphql.StringValueNode(value=value)
    if isinstance(value, list):
        return graphql.ListValueNode(values=tuple(_json_node(item) for item in value))
    return graphql.ObjectValueNode(fields=tuple(
        graphql.ObjectFieldNode(name=graphql.NameNode(value=key), value=_json_node(item))
        for key, item in value.items()))


_JSON_LEAVES = st.none() | st.booleans() | st.integers(-(2**31), 2**31 - 1) | st.text(max_size=20)
_JSON = st.recursive(_JSON_LEAVES, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.sampled_from(["name", "kind", "setting_id", "value", "targets", "waves",
                                                        "serials", "models", "x"]), inner, max_size=4),
                     max_leaves=8)
schemathesis.graphql.scalar("JSON", _JSON.map(_json_node))

FUZZ_SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
                         suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
async def fleet(resources: Resources) -> AsyncIterator[KeyedFleet]:
    seeded = await keyed_fleet(resources, inverters=20)
    async with resources.session_factory() as session, session.begin():
        seeded.keys["admin"], _ = await make_key(session, seeded.mirror.tenant_id, Role.ADMIN)
    yield seeded
    await drop_tenant(resources, seeded.mirror.tenant_id)


@pytest.fixture(scope="module")
def server(test_settings: Settings) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(test_settings)
    simulator = Route(transport=httpx.ASGITransport(app=quiet_simulator().app))

    def route_to_simulator(started: Litestar) -> None:  # after the lifespan opened the app's own resources
        started.state.resources.upstream.route = simulator

    app.on_startup.append(route_to_simulator)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=30)


def _fuzz(operation: Any, headers: dict[str, str], *, conformance: bool = False, graphql: bool = False) -> None:
    @FUZZ_SETTINGS
    @given(case=operation.as_strategy())
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        if graphql:
            # GraphQL answers deliberate errors (not found, forbidden, bad input) in `errors` with HTTP 200;
            # a server error is an HTTP 5xx or an error the policy had to mask as INTERNAL_SERVER_ERROR.
            assert response.status_code < 500, response.text
            body = response.json()
            codes = [error.get("extensions", {}).get("code") for error in body.get("errors") or []]
            assert "INTERNAL_SERVER_ERROR" not in codes, (case.body, body)
            assert None not in codes, (case.body, body)
        elif conformance:
            # ignored_auth would replay with bad keys, tripping the per-client failed-attempt throttle;
            # positive_data_acceptance cannot know that an opaque cursor is only valid if the server made it.
            case.validate_response(response, headers=headers,
                                   excluded_checks=[ignored_auth, positive_data_acceptance])
        else:
            case.validate_response(response, checks=[not_a_server_error], headers=headers)

    run()


@pytest.fixture
async def forget_auth_failures(resources: Resources, test_settings: Settings) -> AsyncIterator[None]:
    """Fuzzing may present bad keys; don't leave this client throttled for the tests that follow."""
    yield
    keys = [key async for key in resources.redis.scan_iter(match=f"{test_settings.redis.namespace}:auth-failures:*")]
    if keys:
        await resources.redis.delete(*keys)


@pytest.mark.usefixtures("forget_auth_failures")
@pytest.mark.parametrize(("tag", "key", "at_least"), [("fleet", "operator", 10), ("live", "operator", 12),
                                                      ("access", "admin", 11)])
def test_openapi_operations_conform(server: str, fleet: KeyedFleet, tag: str, key: str, at_least: int) -> None:
    """Every operation of the fleet, live and access APIs (with a key allowed to call them): no server error, and
    answers conform to the document (live reads answer 424: the tenant has no upstream credential)."""
    headers = fleet.headers(key)
    schema = schemathesis.openapi.from_url(f"{server}/schema/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    tagged = [op for op in operations if tag in (op.definition.raw.get("tags") or [])]
    assert len(tagged) >= at_least
    for operation in tagged:
        _fuzz(operation, headers, conformance=True)


@pytest.mark.usefixtures("forget_auth_failures")
def test_openapi_every_read_operation_has_no_server_error(server: str, fleet: KeyedFleet) -> None:
    """Every GET of the whole document (with a viewer key, so admin endpoints answer 403): no server error."""
    headers = fleet.headers("viewer")
    schema = schemathesis.openapi.from_url(f"{server}/schema/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        if operation.method.upper() == "GET":
            _fuzz(operation, headers)


@pytest.mark.usefixtures("forget_auth_failures")
def test_graphql_schema(server: str, fleet: KeyedFleet) -> None:
    """Every root field of /graphql with generated arguments and selections: no server error."""
    headers = fleet.headers("operator")
    schema = schemathesis.graphql.from_url(f"{server}/graphql", headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        _fuzz(operation, headers, graphql=True)
