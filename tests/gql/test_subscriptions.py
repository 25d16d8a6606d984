"""GraphQL subscriptions end to end: a second API process (a real ``givfleet api`` subprocess sharing the database
and Redis) serves graphql-transport-ws clients; changes are made here, in the test process, as a worker would."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from service.changefeed import publish_changes
from service.core.changes import Change, Topic
from service.core.clock import utcnow
from service.core.limits import MAX_GRAPHQL_BODY_BYTES
from service.core.principal import Principal
from service.core.roles import Role
from service.core.tenancy import tenant_id_from
from service.db.models.monitoring import Alert, Incident
from service.jobs.enqueue import unit_of_work
from service.monitoring.repository import MonitoringRepository
from service.monitoring.sweep import AlertWriter
from service.runtime import Resources
from service.tenants.service import ApiKeyService
from tests.campaigns.conftest import quiet, world_of
from tests.gql.conftest import KeyedFleet
from tests.gql.seed import customer_id, inverter_serial, site_id
from tests.support import free_port
from tests.tenants.factories import committed_key, make_key

GIVFLEET = Path(sys.executable).with_name("givfleet")
PROTOCOL = [Subprotocol("graphql-transport-ws")]
WAIT = 60  # seconds: a bound on waits that end as soon as what they wait for happens

OPERATIONS = Path(__file__).resolve().parents[2] / "graphql" / "operations"
ALERTS = (OPERATIONS / "alert_changes.graphql").read_text()  # the example for portal developers
INCIDENTS = "subscription { incidentChanged { kind incident { id siteId openAlerts } } }"
CAMPAIGN = ("subscription($id: ID!) { campaignProgress(id: $id) { state targetCount "
            "counts { state count } } }")


@pytest.fixture(scope="module")
async def second_api(resources: Resources) -> AsyncIterator[str]:
    """``givfleet api`` in a process of its own, on the run's database and Redis namespace: its base URL."""
    settings = resources.settings
    port = free_port()
    env = {**os.environ, "GIVFLEET_DATABASE_URL": settings.configured_database_url() or "",
           "GIVFLEET_REDIS_URL": settings.configured_redis_url() or "",
           "GIVFLEET_REDIS__NAMESPACE": settings.redis.namespace, "GIVFLEET_HOME": str(settings.home),
           "GIVFLEET_SIMULATOR__ENABLED": "false", "GIVFLEET_API__SUBSCRIPTIONS_PER_CONNECTION": "2",
           "GIVFLEET_API__SUBSCRIPTION_BACKLOG": "4", "GIVFLEET_API__SUBSCRIPTION_KEY_RECHECK_SECONDS": "0"}
    process = await asyncio.create_subprocess_exec(str(GIVFLEET), "api", "--port", str(port), env=env,
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client, asyncio.timeout(WAIT):
            while True:
                assert process.returncode is None, "givfleet api exited"
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)  # not listening yet
        yield base
    finally:
        process.terminate()
        await process.wait()


async def metric(base: str, name: str) -> float:
    """The value of the second process's metric ``name``."""
    async with httpx.AsyncClient(base_url=base) as client:
        exposition = (await client.get("/metrics")).text
    return next(float(line.split()[-1]) for line in exposition.splitlines() if line.startswith(f"{name} "))


async def active_subscriptions(base: str) -> float:
    """The second process's gauge of live subscriptions."""
    return await metric(base, "givfleet_subscriptions_active")


async def dropped_subscriptions(base: str) -> float:
    """The second process's count of subscriptions dropped for falling behind."""
    return await metric(base, "givfleet_subscriptions_dropped_total")


async def until_active(base: str, count: int) -> None:
    """Wait until the second process serves ``count`` subscriptions (its hub is then listening for them)."""
    async with asyncio.timeout(WAIT):
        while await active_subscriptions(base) != count:  # noqa: ASYNC110 - another process's state: polled
            await asyncio.sleep(0.05)


@asynccontextmanager
async def connection(base: str, payload: dict[str, Any]) -> AsyncIterator[ClientConnection]:
    """A graphql-transport-ws connection whose ``connection_init`` carries ``payload``."""
    async with connect(base.replace("http://", "ws://") + "/graphql", subprotocols=PROTOCOL) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        yield socket


async def receive(socket: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        message: dict[str, Any] = json.loads(await socket.recv())
    return message


@asynccontextmanager
async def subscribed(base: str, key: str, query: str, variables: dict[str, Any] | None = None
                     ) -> AsyncIterator[ClientConnection]:
    """A connection authenticated by ``key`` holding one subscription (id ``"1"``)."""
    async with connection(base, {"Authorization": f"Bearer {key}"}) as socket:
        assert (await receive(socket))["type"] == "connection_ack"
        await socket.send(json.dumps({"id": "1", "type": "subscribe",
                                      "payload": {"query": query, "variables": variables or {}}}))
        yield socket


async def next_data(socket: ClientConnection) -> dict[str, Any]:
    """The data of the next result of subscription ``"1"``."""
    message = await receive(socket)
    assert message["type"] == "next", message
    assert "errors" not in message["payload"], message
    data: dict[str, Any] = message["payload"]["data"]
    return data


async def raise_lost(resources: Resources, fleet: KeyedFleet, index: int) -> str:
    """Raise a "communication lost" alert on seeded inverter ``index``, as the monitor does: its id."""
    tenant_id = fleet.mirror.tenant_id
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        writer = AlertWriter(MonitoringRepository(session, tenant_id_from(tenant_id)), 0, {}, utcnow())
        writer.raise_lost(inverter_serial(index), site_id(index), customer_id(index), utcnow())
        await writer.refresh_incidents()
    async with resources.session_factory() as session:
        found = await session.scalar(select(Alert.id).where(Alert.tenant_id == tenant_id,
                                                            Alert.inverter_serial == inverter_serial(index)))
    return str(found)


async def test_an_alert_raised_here_reaches_subscribers_of_another_api_process_within_their_scope(
    second_api: str, resources: Resources, fleet_with_keys: KeyedFleet
) -> None:
    await until_active(second_api, 0)
    async with subscribed(second_api, fleet_with_keys.keys["viewer"], ALERTS) as everyone, \
            subscribed(second_api, fleet_with_keys.keys["sub_viewer"], ALERTS) as subtree, \
            subscribed(second_api, fleet_with_keys.keys["viewer"], INCIDENTS) as incidents:
        await until_active(second_api, 3)
        foreign = await raise_lost(resources, fleet_with_keys, 1)  # inverter 1: sub-contractor 1
        own = await raise_lost(resources, fleet_with_keys, 3)  # inverter 3: sub-contractor 0, the key's subtree

        seen = [await next_data(everyone), await next_data(everyone)]
        assert [(d["alertChanged"]["kind"], d["alertChanged"]["alert"]["id"]) for d in seen] == [
            ("RAISED", foreign), ("RAISED", own)]
        assert seen[0]["alertChanged"]["alert"] | {"lastSeenAt": None} == {
            "id": foreign, "inverterSerial": inverter_serial(1), "siteId": site_id(1), "event": "Communication lost",
            "severity": "MAJOR", "state": "OPEN", "lastSeenAt": None, "acknowledgedBy": None, "clearedAt": None}
        # The subtree key's first change is its own: the foreign one, published first, never reached it.
        assert (await next_data(subtree))["alertChanged"]["alert"]["id"] == own
        opened = [(await next_data(incidents))["incidentChanged"] for _ in range(2)]
        assert [(i["kind"], i["incident"]["siteId"], i["incident"]["openAlerts"]) for i in opened] == [
            ("OPENED", site_id(1), 1), ("OPENED", site_id(3), 1)]


async def test_another_tenants_key_receives_nothing_of_this_tenant(
    second_api: str, resources: Resources, fleet_with_keys: KeyedFleet, other_tenant: KeyedFleet
) -> None:
    await until_active(second_api, 0)
    async with subscribed(second_api, other_tenant.keys["viewer"], ALERTS) as other:
        await until_active(second_api, 1)
        await raise_lost(resources, fleet_with_keys, 4)  # same serials in both tenants
        marker = await raise_lost(resources, other_tenant, 5)
        assert (await next_data(other))["alertChanged"]["alert"]["id"] == marker


@pytest.mark.usefixtures("forget_auth_failures")
async def test_connections_without_a_valid_key_are_closed_forbidden(second_api: str,
                                                                    fleet_with_keys: KeyedFleet) -> None:
    for payload in ({"Authorization": "Bearer gvf_not_a_real_key"}, {}, {"Authorization": 42}):
        async with connection(second_api, payload) as socket:
            with pytest.raises(ConnectionClosed) as closed:
                await receive(socket)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4403, "Forbidden")
    # Subscribing before the connection is acknowledged is refused as the protocol says.
    async with connect(second_api.replace("http://", "ws://") + "/graphql", subprotocols=PROTOCOL) as socket:
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": ALERTS}}))
        with pytest.raises(ConnectionClosed) as closed:
            await receive(socket)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401


async def test_a_revoked_keys_subscription_is_closed_before_its_next_change(
    second_api: str, resources: Resources, fleet_with_keys: KeyedFleet
) -> None:
    tenant_id = tenant_id_from(fleet_with_keys.mirror.tenant_id)
    async with resources.session_factory() as session, session.begin():
        key, key_id = await make_key(session, tenant_id, Role.VIEWER)
    await until_active(second_api, 0)
    async with subscribed(second_api, key, ALERTS) as socket:
        await until_active(second_api, 1)
        async with resources.session_factory() as session, session.begin():
            await ApiKeyService(session, Principal.cli(tenant_id)).revoke(key_id)
        await raise_lost(resources, fleet_with_keys, 6)
        with pytest.raises(ConnectionClosed) as closed:
            await receive(socket)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_a_key_revoked_after_the_ack_gets_no_first_campaign_snapshot(
    second_api: str, resources: Resources, fleet_with_keys: KeyedFleet
) -> None:
    tenant_id = tenant_id_from(fleet_with_keys.mirror.tenant_id)
    async with resources.session_factory() as session, session.begin():
        key, key_id = await make_key(session, tenant_id, Role.VIEWER)
    async with connection(second_api, {"Authorization": f"Bearer {key}"}) as socket:
        assert (await receive(socket))["type"] == "connection_ack"
        async with resources.session_factory() as session, session.begin():
            await ApiKeyService(session, Principal.cli(tenant_id)).revoke(key_id)
        await socket.send(json.dumps({"id": "1", "type": "subscribe",
                                      "payload": {"query": CAMPAIGN, "variables": {"id": str(uuid.uuid4())}}}))
        with pytest.raises(ConnectionClosed) as closed:
            await receive(socket)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_a_websocket_message_larger_than_a_graphql_body_is_refused_before_authentication(
    second_api: str,
) -> None:
    padding = "x" * MAX_GRAPHQL_BODY_BYTES
    async with connection(second_api, {"Authorization": f"Bearer gvf_{padding}"}) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await receive(socket)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009  # message too big


async def test_a_change_of_a_kind_this_version_does_not_know_is_skipped(
    second_api: str, resources: Resources, fleet_with_keys: KeyedFleet
) -> None:
    await until_active(second_api, 0)
    async with subscribed(second_api, fleet_with_keys.keys["viewer"], ALERTS) as socket:
        await until_active(second_api, 1)
        first = await raise_lost(resources, fleet_with_keys, 8)
        assert (await next_data(socket))["alertChanged"]["alert"]["id"] == first
        tenant_id = fleet_with_keys.mirror.tenant_id  # a newer process, mid rolling deploy, announces a new kind
        await publish_changes(resources.redis, [Change(Topic.ALERT, tenant_id, uuid.UUID(first), "alert.snoozed")])
        second = await raise_lost(resources, fleet_with_keys, 9)
        assert (await next_data(socket))["alertChanged"]["alert"]["id"] == second


async def test_a_client_that_falls_behind_is_disconnected_rather_than_buffered_for(
    second_api: str, resources: Resources, fleet_with_keys: KeyedFleet
) -> None:
    await raise_lost(resources, fleet_with_keys, 7)
    tenant_id = fleet_with_keys.mirror.tenant_id
    async with resources.session_factory() as session:
        incident_id = await session.scalar(select(Incident.id).where(Incident.tenant_id == tenant_id,
                                                                     Incident.site_upstream_id == site_id(7)))
    assert incident_id is not None
    dropped_before = await dropped_subscriptions(second_api)
    await until_active(second_api, 0)
    async with subscribed(second_api, fleet_with_keys.keys["viewer"], ALERTS) as slow, \
            subscribed(second_api, fleet_with_keys.keys["viewer"], INCIDENTS) as marker:
        await until_active(second_api, 2)
        async with resources.session_factory() as session, session.begin():
            # The slow subscriber's first re-read waits on this lock: it cannot keep up, whatever the machine.
            await session.execute(text(f"LOCK TABLE {Alert.__tablename__} IN ACCESS EXCLUSIVE MODE"))
            await publish_changes(resources.redis, [Change(Topic.ALERT, tenant_id, uuid.uuid4(), "alert.raised")
                                                    for _ in range(10)])  # beyond the process's backlog of 4
            await publish_changes(resources.redis, [Change(Topic.INCIDENT, tenant_id, incident_id,
                                                           "incident.updated")])
            # Changes are dispatched in order: once this arrives, the alerts have overflowed the slow one's feed.
            assert (await next_data(marker))["incidentChanged"]["incident"]["id"] == str(incident_id)
        with pytest.raises(ConnectionClosed) as closed:
            await receive(slow)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1013  # try again later
    assert await dropped_subscriptions(second_api) == dropped_before + 1


async def test_malformed_messages_close_the_connection_as_the_protocol_says(second_api: str,
                                                                            fleet_with_keys: KeyedFleet) -> None:
    subscription = "subscription { alertChanged { kind } }"
    for message in ("[1]", '{"type": "connection_init", "payload": {"x": "\\ud800"}}',
                    json.dumps({"id": 7, "type": "subscribe", "payload": {"query": subscription}}),
                    json.dumps({"id": "1", "type": "subscribe", "payload": {"query": 5}}),
                    json.dumps({"id": "1", "type": "subscribe", "payload": {"query": subscription, "variables": [1]}})):
        async with connection(second_api, {"Authorization": f"Bearer {fleet_with_keys.keys['viewer']}"}) as socket:
            assert (await receive(socket))["type"] == "connection_ack"
            await socket.send(message)
            with pytest.raises(ConnectionClosed) as closed:
                await receive(socket)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4400, (message, closed.value.rcvd)


async def test_limits_apply_to_subscriptions(second_api: str, fleet_with_keys: KeyedFleet) -> None:
    key = fleet_with_keys.keys["viewer"]
    async with subscribed(second_api, key, ALERTS) as socket:  # the process allows 2 per connection
        for number, query in ((2, INCIDENTS), (3, ALERTS)):
            await socket.send(json.dumps({"id": str(number), "type": "subscribe", "payload": {"query": query}}))
        refused = await receive(socket)
    assert (refused["id"], refused["type"]) == ("3", "error")
    assert refused["payload"][0]["message"] == "Subscription limit reached"

    aliases = "subscription { " + " ".join(f"a{i}: alertChanged {{ kind }}" for i in range(21)) + " }"
    async with subscribed(second_api, key, aliases) as socket:
        refused = await receive(socket)
    assert refused["type"] == "error"
    assert refused["payload"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"  # as a query with 21 aliases

    async with subscribed(second_api, key, "{ viewer { role } }") as socket:
        answer = await receive(socket)
    assert answer["payload"]["errors"][0]["extensions"]["code"] == "BAD_REQUEST"  # queries go over HTTP


async def test_an_unknown_campaign_is_an_error_not_a_silent_subscription(second_api: str,
                                                                          fleet_with_keys: KeyedFleet) -> None:
    async with subscribed(second_api, fleet_with_keys.keys["viewer"], CAMPAIGN, {"id": str(uuid.uuid4())}) as socket:
        message = await receive(socket)
    assert message["type"] == "next"
    assert message["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_an_alert_subscription_of_a_site_id_that_cannot_exist_is_refused(
        second_api: str, fleet_with_keys: KeyedFleet) -> None:
    for refused_id in (-1, 0):
        async with subscribed(second_api, fleet_with_keys.keys["viewer"], ALERTS, {"site": refused_id}) as socket:
            message = await receive(socket)
        assert message["type"] == "next", message
        error = message["payload"]["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "siteId must be an integer from 1" in error["message"]


@pytest.mark.usefixtures("clean_db")  # last: it empties every table (the module's fleets too)
async def test_campaign_progress_arrives_while_a_small_campaign_runs(second_api: str, resources: Resources) -> None:
    async with world_of(resources, quiet(fleet_size=6)) as world:
        key = await committed_key(resources, world.tenant_id, Role.VIEWER)
        campaign_id = await world.create({"name": "reserve 10", "setting_id": 71, "value": 10})
        await world.act("start", campaign_id)
        async with subscribed(second_api, key, CAMPAIGN, {"id": str(campaign_id)}) as socket:
            first = (await next_data(socket))["campaignProgress"]  # the campaign as it is when subscribed
            assert first["state"] == "running"
            await world.engine().run(campaign_id)
            updates = []
            while not updates or updates[-1]["state"] != "completed":
                updates.append((await next_data(socket))["campaignProgress"])
        final = updates[-1]
        counts = {entry["state"]: entry["count"] for entry in final["counts"] if entry["count"]}
        assert set(counts) <= {"applied", "skipped", "excluded"}
        assert sum(counts.values()) == final["targetCount"] == first["targetCount"]
        # Each recorded answer was announced (the campaign is re-read, so later changes may show in earlier ones).
        assert len(updates) >= 2

