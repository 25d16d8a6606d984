"""The notification API over REST and GraphQL: the secret is shown once, bad input is a clear problem, the log
shows attempts, replay queues the message again and says when."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from service.core.clock import utcnow
from service.db.models.notifications import MessageState, NotificationMessage
from service.jobs.enqueue import unit_of_work
from service.notifications import addresses
from service.runtime import Resources
from service.settings import Settings
from tests.conftest import http_client
from tests.tenants.factories import TenantWithKey, committed_tenant

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(app) as client:  # type: ignore[arg-type]
        yield client


@pytest.fixture
async def admin(resources: Resources) -> TenantWithKey:
    return await committed_tenant(resources)


def auth(tenant: TenantWithKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.key}"}


async def test_a_webhook_secret_is_shown_once_and_rules_route_to_the_channel(
        client: httpx.AsyncClient, admin: TenantWithKey) -> None:
    created = await client.post("/api/v1/notifications/channels", headers=auth(admin), json={
        "kind": "webhook", "name": "ops", "url": "https://hooks.example.com/in"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    channel_id = body["channel"]["id"]
    listed = await client.get("/api/v1/notifications/channels", headers=auth(admin))
    assert [c["id"] for c in listed.json()] == [channel_id]
    assert "whsec_" not in listed.text
    rotated = await client.post(f"/api/v1/notifications/channels/{channel_id}/rotate-secret", headers=auth(admin))
    assert rotated.json()["secret"] not in (body["secret"], None)

    rule = await client.post("/api/v1/notifications/rules", headers=auth(admin), json={
        "channel_id": channel_id, "event_types": ["alert.raised"], "min_severity": "major"})
    assert rule.status_code == 201, rule.text
    answer = await client.post("/graphql", headers=auth(admin), json={"query": """
        { notificationChannels { name kind } notificationRules { eventTypes minSeverity } }"""})
    assert answer.json()["data"] == {"notificationChannels": [{"name": "ops", "kind": "WEBHOOK"}],
                                     "notificationRules": [{"eventTypes": ["alert.raised"], "minSeverity": "MAJOR"}]}


@pytest.mark.parametrize(("payload", "field"), [
    ({"kind": "webhook", "name": "a", "url": "ftp://files.example.com/"}, "url"),
    ({"kind": "webhook", "name": "a", "url": "https://hooks.example.com/\u0000"}, "url"),
    ({"kind": "webhook", "name": "a\u0000b", "url": "https://hooks.example.com/"}, "name"),
    ({"kind": "email", "name": "a", "email_to": ["ops\u0000@example.com"]}, "email_to"),
    ({"kind": "webhook", "name": "a", "url": "https://user:pw@hooks.example.com/"}, "url"),
    ({"kind": "webhook", "name": "a", "url": "http://169.254.169.254/latest/meta-data/"}, "url"),
    ({"kind": "webhook", "name": "a", "url": "http://10.1.2.3:8080/hooks"}, "url"),
    ({"kind": "webhook", "name": "a", "url": "http://[::ffff:192.168.1.5]/"}, "url"),
    ({"kind": "webhook", "name": "a", "url": "http://localhost:9000/"}, "url"),
    ({"kind": "webhook", "name": "a", "url": "http://a..example.com/"}, "url"),
    ({"kind": "webhook", "name": "a", "url": f"http://{'a' * 64}.example.com/"}, "url"),
    ({"kind": "email", "name": "a", "email_to": []}, "email_to"),
    ({"kind": "email", "name": "a", "email_to": ["not an address"]}, "email_to"),
    ({"kind": "givenergy", "name": "a", "quiet_start": "22:00:00"}, "quiet_start"),
    ({"kind": "givenergy", "name": "a", "credential_id": "6f1c0d52-8a43-4a0e-9b1e-3f7d5c2a9e10"}, "credential_id"),
])
async def test_bad_channels_are_refused_with_a_clear_problem(client: httpx.AsyncClient, admin: TenantWithKey,
                                                             payload: dict[str, object], field: str) -> None:
    answer = await client.post("/api/v1/notifications/channels", headers=auth(admin), json=payload)
    assert answer.status_code == 422, answer.text
    assert [error["key"] for error in answer.json()["errors"]] == [field]
    graphql = await client.post("/graphql", headers=auth(admin), json={
        "query": "mutation($input: NotificationChannelInput!) { createNotificationChannel(input: $input) "
                 "{ channel { id } errors { code field } } }",
        "variables": {"input": {_camel(k): (v.upper() if k == "kind" else v) for k, v in payload.items()}}})
    assert graphql.json()["data"]["createNotificationChannel"]["errors"][0]["field"] == _camel(field)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


async def test_a_refused_webhook_address_is_named_by_its_kind_with_the_setting_that_allows_it(
        client: httpx.AsyncClient, admin: TenantWithKey, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = await client.post("/api/v1/notifications/channels", headers=auth(admin), json={
        "kind": "webhook", "name": "local", "url": "http://127.0.0.1:9911/hook"})
    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"key": "url", "message": "127.0.0.1 is a loopback address: refused unless "
                                         "GIVFLEET_NOTIFICATIONS__WEBHOOK_ALLOWED_NETWORKS lists its network"}]
    monkeypatch.setenv("GIVFLEET_NOTIFICATIONS__WEBHOOK_ALLOWED_NETWORKS", '["127.0.0.0/8"]')
    assert Settings().notifications.webhook_allowed_networks == ["127.0.0.0/8"]  # the setting named is the real one


async def test_a_channel_update_refuses_what_only_creation_sets_and_unknown_fields(
        client: httpx.AsyncClient, admin: TenantWithKey) -> None:
    created = await client.post("/api/v1/notifications/channels", headers=auth(admin), json={
        "kind": "webhook", "name": "ops", "url": "https://hooks.example.com/in"})
    channel = created.json()["channel"]
    path = f"/api/v1/notifications/channels/{channel['id']}"
    for body, field in (({"url": "http://10.0.0.1/x"}, "url"), ({"kind": "email"}, "kind"),
                        ({"enabled": False, "name": "renamed"}, "name")):
        refused = await client.patch(path, headers=auth(admin), json=body)
        assert refused.status_code == 400, body
        assert refused.json()["errors"] == [{"key": field, "message":
                                             f"{field} cannot be changed: create a new channel (and delete this one)"}]
    unknown = await client.patch(path, headers=auth(admin), json={"colour": "red"})
    assert (unknown.status_code, [error["key"] for error in unknown.json()["errors"]]) == (400, ["colour"])
    assert (await client.get("/api/v1/notifications/channels", headers=auth(admin))).json() == [channel]
    assert (await client.patch(path, headers=auth(admin), json={"enabled": False})).json()["enabled"] is False

    graphql = await client.post("/graphql", headers=auth(admin), json={
        "query": "mutation($id: ID!) { updateNotificationChannel(id: $id, input: {url: \"http://10.0.0.1/x\"}) "
                 "{ channel { url } } }", "variables": {"id": channel["id"]}})
    assert graphql.json()["data"] is None
    assert "not to include unknown field 'url'" in graphql.json()["errors"][0]["message"]


async def test_an_unknown_event_type_a_duplicate_name_and_a_foreign_message_are_clear_problems(
        client: httpx.AsyncClient, admin: TenantWithKey) -> None:
    spec = {"kind": "givenergy", "name": "phone"}
    channel_id = (await client.post("/api/v1/notifications/channels", headers=auth(admin), json=spec)).json()[
        "channel"]["id"]
    again = await client.post("/api/v1/notifications/channels", headers=auth(admin), json=spec)
    assert again.status_code == 409
    rule = await client.post("/api/v1/notifications/rules", headers=auth(admin), json={
        "channel_id": channel_id, "event_types": ["alert.exploded"]})
    assert rule.status_code in (400, 422)
    assert "alert.exploded" in rule.text
    replay = await client.post(f"/api/v1/notifications/messages/{uuid.uuid4()}/replay", headers=auth(admin))
    assert replay.status_code == 404
    log = await client.get("/api/v1/notifications/messages?limit=500", headers=auth(admin))
    assert log.status_code == 400


async def test_a_webhook_whose_name_server_never_answers_is_added_without_waiting_for_it(
        client: httpx.AsyncClient, admin: TenantWithKey, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lookup at creation is bounded, and runs on threads of its own (a hung resolver blocks neither the
    request nor the event loop's threads, which resolve the database and Redis hosts)."""
    answered = threading.Event()
    lookup = socket.getaddrinfo

    def hung(host: str, *args: Any, **kwargs: Any) -> Any:
        if host != "hooks.slow-dns.example":
            return lookup(host, *args, **kwargs)
        answered.wait(30)
        raise socket.gaierror("no answer")

    monkeypatch.setattr(socket, "getaddrinfo", hung)
    monkeypatch.setattr(addresses, "CREATION_LOOKUP_SECONDS", 0.2)
    try:
        created = await asyncio.wait_for(client.post("/api/v1/notifications/channels", headers=auth(admin), json={
            "kind": "webhook", "name": "slow dns", "url": "https://hooks.slow-dns.example/in"}), 20)
    finally:
        answered.set()
    assert created.status_code == 201, created.text


async def test_a_replayed_message_keeps_its_creation_time_and_shows_when_it_was_replayed(
        client: httpx.AsyncClient, admin: TenantWithKey, resources: Resources) -> None:
    channel_id = (await client.post("/api/v1/notifications/channels", headers=auth(admin), json={
        "kind": "givenergy", "name": "phone"})).json()["channel"]["id"]
    yesterday = utcnow() - timedelta(days=1)
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        message = NotificationMessage(tenant_id=admin.tenant_id, channel_id=uuid.UUID(channel_id),
                                      state=MessageState.FAILED, event_count=0, attempts=3, failures=3,
                                      plain_fallback=False, next_attempt_at=yesterday, created_at=yesterday)
        session.add(message)
        await session.flush()
        message_id = message.id
    before = await client.get("/api/v1/notifications/messages", headers=auth(admin))
    assert [m["replayed_at"] for m in before.json()] == [None]

    replayed = await client.post(f"/api/v1/notifications/messages/{message_id}/replay", headers=auth(admin))

    assert replayed.status_code == 202, replayed.text
    body = replayed.json()
    assert body["state"] == "pending"
    assert datetime.fromisoformat(body["created_at"]) == yesterday
    assert datetime.fromisoformat(body["replayed_at"]) > yesterday + timedelta(hours=23)
    answer = await client.post("/graphql", headers=auth(admin), json={
        "query": "{ notificationLog { createdAt replayedAt state } }"})
    (entry,) = answer.json()["data"]["notificationLog"]
    assert entry["state"] == "PENDING"
    assert datetime.fromisoformat(entry["createdAt"]) == yesterday
    assert datetime.fromisoformat(entry["replayedAt"]) == datetime.fromisoformat(body["replayed_at"])
