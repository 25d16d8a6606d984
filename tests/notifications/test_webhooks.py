"""Webhooks: Standard Webhooks signatures (checked with the independent ``standardwebhooks`` package), retries
after 500s and time-outs, disabling after N failures, replay, and the SSRF guard."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, text, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.core.clock import utcnow
from service.db.models.notifications import (
    AttemptStatus,
    ChannelKind,
    MessageState,
    NotificationAttempt,
    NotificationChannel,
    NotificationMessage,
)
from service.notifications.addresses import networks, refusal
from service.notifications.channels import send_webhook
from service.notifications.repository import NotificationRepository
from service.notifications.service import ChannelSpec, CreatedChannel
from tests.notifications.conftest import Harness, Receiver, loopback_settings


async def webhook(harness: Harness, receiver: Receiver) -> CreatedChannel:
    created: CreatedChannel = await harness.manage(
        lambda s: s.create_channel(ChannelSpec(ChannelKind.WEBHOOK, "ops", url=receiver.url)))
    await harness.manage(lambda s: s.add_rule(created.channel.id, ["alert.raised"], None))
    return created


async def only_message(harness: Harness) -> NotificationMessage:
    async with harness.resources.session_factory() as session:
        return (await session.scalars(select(NotificationMessage))).one()


async def attempts(harness: Harness) -> list[NotificationAttempt]:
    async with harness.resources.session_factory() as session:
        return list((await session.scalars(select(NotificationAttempt).order_by(NotificationAttempt.number))).all())


async def test_deliveries_are_signed_with_every_active_secret_during_a_rotation(
        harness: Harness, receiver: Receiver) -> None:
    created = await webhook(harness, receiver)
    assert created.secret is not None
    assert created.secret.startswith("whsec_")
    await harness.alerts(["SA001"])
    await harness.deliver()
    rotated: str = await harness.manage(lambda s: s.rotate_secret(created.channel.id))
    await harness.alerts(["SA002"])
    await harness.deliver()

    first, second = receiver.received
    assert json.loads(first.body)["data"]["inverter_serial"] == "SA001"
    Webhook(created.secret).verify(first.body, first.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(rotated).verify(first.body, first.headers)
    for secret in (created.secret, rotated):  # both verify the delivery made during the overlap
        Webhook(secret).verify(second.body, second.headers)
    assert first.headers["webhook-id"] != second.headers["webhook-id"]


async def test_retries_follow_the_back_off_after_a_500_and_a_time_out_then_succeed(
        harness: Harness, receiver: Receiver) -> None:
    await webhook(harness, receiver)
    receiver.statuses = [500]
    await harness.alerts(["SA001"])
    await harness.deliver(wait=False)
    message = await only_message(harness)
    base = harness.settings.webhook_retry_base_seconds
    first_wait = (message.next_attempt_at - harness.clock()).total_seconds()
    assert 0.5 * base - 1 <= first_wait <= base

    receiver.hold = True  # the next attempt gets no answer within the time-out
    harness.clock.offset += timedelta(seconds=base)
    await harness.driver.run(harness.notifier, harness.clock, wait=False)
    message = await only_message(harness)
    second_wait = (message.next_attempt_at - harness.clock()).total_seconds()
    assert base - 1 <= second_wait <= 2 * base

    receiver.hold = False
    harness.clock.offset += timedelta(seconds=2 * base)
    await harness.driver.run(harness.notifier, harness.clock, wait=False)

    tries = await attempts(harness)
    assert [(a.number, a.status, a.response_code) for a in tries] == [
        (1, AttemptStatus.FAILED, 500), (2, AttemptStatus.FAILED, None), (3, AttemptStatus.SUCCEEDED, 204)]
    assert tries[0].excerpt == "answer 500"
    assert tries[1].excerpt == "timed out"
    assert all(a.latency_ms is not None for a in tries)
    assert (await only_message(harness)).state is MessageState.DELIVERED
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # one id on every retry


async def test_an_endpoint_failing_n_times_is_disabled_resumes_its_message_when_enabled_and_replays(
        harness: Harness, receiver: Receiver) -> None:
    harness.settings = loopback_settings(webhook_disable_after=3, webhook_retry_base_seconds=1.0,
                                         webhook_disable_min_span_seconds=0)
    created = await webhook(harness, receiver)
    receiver.statuses = [500, 502, 503]
    await harness.alerts(["SA001"])
    for _ in range(3):
        await harness.deliver(wait=False)
        harness.clock.offset += timedelta(seconds=5)
    async with harness.resources.session_factory() as session:
        channel = await session.get(NotificationChannel, created.channel.id)
    assert channel is not None
    assert channel.disabled_at is not None
    assert channel.disabled_reason == "3 consecutive failed attempts"
    message = await only_message(harness)
    assert message.state is MessageState.PENDING  # not given up: it goes once the endpoint is enabled again

    await harness.alerts(["SA002"])  # routed, but held back while the endpoint is disabled
    await harness.deliver()
    assert len(receiver.received) == 3

    await harness.manage(lambda s: s.update_channel(created.channel.id, enabled=True))
    await harness.driver.run(harness.notifier, harness.clock)
    serials = [json.loads(r.body)["data"]["inverter_serial"] for r in receiver.received]
    assert sorted(serials) == ["SA001"] * 4 + ["SA002"]
    await harness.manage(lambda s: s.replay(message.id))
    await harness.driver.run(harness.notifier, harness.clock)
    assert len(receiver.received) == 6
    assert len({r.headers["webhook-id"] for r in receiver.received if b"SA001" in r.body}) == 1
    async with harness.resources.session_factory() as session:
        states = (await session.scalars(select(NotificationMessage.state))).all()
    assert sorted(states) == [MessageState.DELIVERED, MessageState.DELIVERED]


async def test_a_message_gives_up_at_the_retry_horizon_and_a_replay_keeps_its_creation_time_and_retries_anew(
        harness: Harness, receiver: Receiver) -> None:
    harness.settings = loopback_settings(webhook_retry_base_seconds=1.0, webhook_retry_horizon_seconds=60,
                                         webhook_disable_after=100)
    await webhook(harness, receiver)
    receiver.statuses = [500] * 10
    await harness.alerts(["SA001"])
    await harness.deliver(wait=False)
    first = await only_message(harness)
    assert first.state is MessageState.PENDING
    yesterday = first.created_at - timedelta(days=1)  # as if it had been failing since yesterday
    async with harness.resources.session_factory() as session, session.begin():
        await session.execute(update(NotificationMessage).values(created_at=yesterday))
    harness.clock.offset += timedelta(seconds=2)
    await harness.driver.run(harness.notifier, harness.clock, wait=False)
    assert (await only_message(harness)).state is MessageState.FAILED  # its next try would be past the horizon
    assert len(receiver.received) == 2

    await harness.manage(lambda s: s.replay(first.id))
    replayed = await only_message(harness)
    assert replayed.created_at == yesterday
    assert replayed.replayed_at is not None
    assert replayed.replayed_at > yesterday + timedelta(hours=23)
    await harness.driver.run(harness.notifier, harness.clock, wait=False)
    assert len(receiver.received) == 3
    assert (await only_message(harness)).state is MessageState.PENDING  # a new horizon, counted from the replay


async def test_the_open_message_of_a_channel_counts_a_replayed_one_from_its_replay(
        harness: Harness, receiver: Receiver) -> None:
    channel = (await webhook(harness, receiver)).channel
    now = utcnow()

    def pending(created_at: datetime, replayed_at: datetime | None = None) -> NotificationMessage:
        return NotificationMessage(tenant_id=harness.tenant_id, channel_id=channel.id, state=MessageState.PENDING,
                                   event_count=1, attempts=0, failures=0, plain_fallback=False, next_attempt_at=now,
                                   created_at=created_at, replayed_at=replayed_at)

    replayed, waiting = pending(now - timedelta(days=1), replayed_at=now), pending(now - timedelta(hours=1))
    async with harness.resources.session_factory() as session, session.begin():
        session.add_all([replayed, waiting])
    async with harness.resources.session_factory() as session:
        first = await NotificationRepository(session, harness.tenant_id).open_message(channel.id)

    assert first is not None
    assert first.id == waiting.id


async def test_a_burst_failing_at_once_does_not_disable_the_endpoint_until_the_failures_span_the_minimum(
        harness: Harness, receiver: Receiver) -> None:
    harness.settings = loopback_settings(webhook_disable_after=3, webhook_retry_base_seconds=30.0,
                                         webhook_disable_min_span_seconds=60)
    created = await webhook(harness, receiver)
    receiver.statuses = [500] * 10
    await harness.alerts([f"SA00{n}" for n in range(5)])
    await harness.deliver(wait=False)
    async with harness.resources.session_factory() as session:
        channel = await session.get(NotificationChannel, created.channel.id)
    assert channel is not None
    assert channel.consecutive_failures == 5
    assert channel.disabled_at is None

    harness.clock.offset += timedelta(seconds=61)
    await harness.driver.run(harness.notifier, harness.clock, wait=False)
    async with harness.resources.session_factory() as session:
        channel = await session.get(NotificationChannel, created.channel.id)
    assert channel is not None
    assert channel.disabled_at is not None


@pytest.mark.parametrize(("address", "kind"), [
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"), ("127.0.0.1", "loopback"),
    ("169.254.169.254", "link-local"), ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"),  # noqa: S104
    ("::1", "loopback"), ("fe80::1", "link-local"), ("fd00::1", "private"),
    ("::ffff:127.0.0.1", "loopback (carried in ::ffff:7f00:1)"), ("::", "unspecified"),
    ("100.100.100.200", "shared (100.64.0.0/10)"), ("100.64.0.1", "shared (100.64.0.0/10)"), ("fec0::1", "site-local"),
    ("2002:a00:1::1", "private (carried in 2002:a00:1::1)"), ("2002:7f00:1::", "loopback (carried in 2002:7f00:1::)"),
    ("64:ff9b::a9fe:a9fe", "link-local (carried in 64:ff9b::a9fe:a9fe)"), ("240.0.0.1", "reserved"),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private (carried in 2001:0:4136:e378:8000:63bf:f5ff:fffe)")])
def test_the_guard_refuses_every_address_not_globally_reachable_naming_its_kind(address: str, kind: str) -> None:
    assert refusal(ipaddress.ip_address(address), []) == kind


def test_the_guard_lets_public_addresses_and_allowed_networks_through() -> None:
    assert refusal(ipaddress.ip_address("93.184.216.34"), []) is None
    assert refusal(ipaddress.ip_address("2606:4700::1111"), []) is None
    assert refusal(ipaddress.ip_address("127.0.0.1"), networks(["127.0.0.0/8"])) is None


async def test_a_webhook_to_a_name_resolving_to_loopback_is_refused_before_any_request(receiver: Receiver) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    for url in (f"http://localhost:{port}/hooks", receiver.url, f"http://[::1]:{port}/"):
        outcome = await send_webhook(loopback_settings(webhook_allowed_networks=[]), url, ["whsec_" + "A" * 44],
                                     "msg_1", b"{}", timestamp=1)
        assert outcome.status is AttemptStatus.FAILED
        assert outcome.excerpt is not None
        assert "refused" in outcome.excerpt
    assert receiver.received == []


async def test_a_large_answer_is_read_only_up_to_the_cap(receiver: Receiver) -> None:
    receiver.statuses = [200]
    outcome = await send_webhook(loopback_settings(webhook_max_response_bytes=4), receiver.url,
                                 ["whsec_" + "A" * 44], "msg_1", b"{}", timestamp=1)
    assert outcome.status is AttemptStatus.SUCCEEDED
    assert outcome.excerpt == "answ"


async def test_a_receiver_trickling_its_answer_is_cut_off_by_the_overall_deadline() -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(200):  # a byte every 50 ms: each read is quick, the answer never ends
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.05)
        writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        outcome = await asyncio.wait_for(
            send_webhook(loopback_settings(webhook_timeout_seconds=0.5), f"http://127.0.0.1:{port}/hooks",
                         ["whsec_" + "A" * 44], "msg_1", b"{}", timestamp=1), timeout=5)
    assert outcome.status is AttemptStatus.FAILED
    assert outcome.excerpt == "timed out"


async def test_a_send_waits_for_a_flush_holding_its_channel_without_holding_the_message(
        harness: Harness, receiver: Receiver) -> None:
    # A flush locks the channel, then its messages; a send taking the message first would deadlock against it.
    created = await webhook(harness, receiver)
    receiver.statuses = [500]
    await harness.alerts(["SA001"])
    await harness.deliver(wait=False)
    message = await only_message(harness)
    harness.clock.offset += timedelta(seconds=3 * harness.settings.webhook_retry_base_seconds)
    async with harness.resources.session_factory() as flush, flush.begin():
        await flush.execute(select(NotificationChannel).where(NotificationChannel.id == created.channel.id)
                            .with_for_update())
        send = asyncio.create_task(harness.notifier.send(harness.tenant_id, message.id))
        for _ in range(500):  # until the send waits for a lock (bounded)
            waiting = await flush.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"))
            if waiting or send.done():
                break
            await asyncio.sleep(0.01)
        assert not send.done(), "the send went ahead although a flush held its channel"
        locked = await flush.scalar(select(NotificationMessage.id).where(NotificationMessage.id == message.id)
                                    .with_for_update(nowait=True))
        assert locked == message.id
    assert await asyncio.wait_for(send, timeout=10) is AttemptStatus.SUCCEEDED
