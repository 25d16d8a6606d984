"""E-mail content, routing rules, quiet hours, digest intervals and test sends."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from email import message_from_bytes
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from service.db.models.monitoring import Severity
from service.db.models.notifications import ChannelKind, DeliveryState, NotificationDelivery, NotificationMessage
from service.db.models.tenant import Tenant
from service.notifications.routing import matches, quiet_until
from service.notifications.service import ChannelSpec, CreatedChannel
from tests.notifications.conftest import Harness, Receiver, loopback_settings


async def email_channel(harness: Harness, port: int, **spec: Any) -> CreatedChannel:
    harness.settings = loopback_settings(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
                                         smtp_from="alerts@givfleet.example")
    created: CreatedChannel = await harness.manage(lambda s: s.create_channel(ChannelSpec(
        ChannelKind.EMAIL, "team", email_to=("ops@installer.example", "boss@installer.example"), **spec)))
    return created


async def test_an_email_digest_arrives_with_text_and_a_table_of_sites_and_inverters(
        harness: Harness, smtp_server: tuple[int, Any]) -> None:
    port, mailbox = smtp_server
    created = await email_channel(harness, port)
    await harness.manage(lambda s: s.add_rule(created.channel.id, [], Severity.MAJOR))
    summaries = await harness.alerts(["SA100", "SA101"], site=7001)
    await harness.alerts(["SA102"], "Battery Low", site=7002, severity=Severity.MINOR)  # below the rule
    await harness.deliver()

    (envelope,) = mailbox.envelopes
    assert sorted(envelope.rcpt_tos) == ["boss@installer.example", "ops@installer.example"]
    mail = message_from_bytes(envelope.content)
    assert mail["From"] == "alerts@givfleet.example"
    assert mail["Subject"] == "2 new faults at 1 site"
    async with harness.resources.session_factory() as session:
        message = (await session.scalars(select(NotificationMessage))).one()
    assert mail["Message-ID"] == f"<{message.id.hex}@givfleet>"
    parts = {part.get_content_type(): part.get_payload(decode=True).decode() for part in mail.walk()
             if part.get_content_type() in ("text/plain", "text/html")}
    for summary in summaries:
        assert summary in parts["text/plain"]
    html = parts["text/html"]
    assert "<td>SA100</td>" in html
    assert "<td>SA101</td>" in html
    assert "<td>7001</td>" in html
    assert "SA102" not in html


async def test_quiet_hours_hold_non_critical_events_then_send_one_digest(
        harness: Harness, smtp_server: tuple[int, Any]) -> None:
    port, mailbox = smtp_server
    async with harness.resources.session_factory() as session, session.begin():
        await session.execute(update(Tenant).where(Tenant.id == harness.tenant_id).values(timezone="Europe/London"))
    created = await email_channel(harness, port, quiet_start=time(0), quiet_end=time(23, 59))
    await harness.manage(lambda s: s.add_rule(created.channel.id, [], None))
    harness.clock.offset = _into_quiet_hours(harness.clock())
    await harness.alerts(["SA200", "SA201"])
    await harness.alerts(["SA299"], "Isolation Fault", severity=Severity.CRITICAL)
    await harness.deliver(wait=False)
    assert len(mailbox.envelopes) == 1  # the critical one only
    assert "SA299" in mailbox.envelopes[0].content.decode()
    async with harness.resources.session_factory() as session:
        held = (await session.scalars(select(NotificationDelivery.state))).all()
    assert sorted(held) == [DeliveryState.DELIVERED, DeliveryState.HELD, DeliveryState.HELD]

    harness.clock.offset += timedelta(days=1)  # past the end of the quiet hours
    await harness.notifier.sweep()
    await harness.driver.run(harness.notifier, harness.clock, wait=False)
    assert len(mailbox.envelopes) == 2
    digest = mailbox.envelopes[1].content.decode()
    assert "SA200" in digest
    assert "SA201" in digest


def _into_quiet_hours(now: datetime) -> timedelta:
    """How far to move the clock so it reads 12:00 in London today (inside 00:00-23:59)."""
    london = now.astimezone(ZoneInfo("Europe/London"))
    noon = london.replace(hour=12, minute=0, second=0, microsecond=0)
    return noon - london


async def test_a_digest_interval_gathers_what_arrives_within_it(
        harness: Harness, smtp_server: tuple[int, Any]) -> None:
    port, mailbox = smtp_server
    created = await email_channel(harness, port, digest_interval_seconds=3600)
    await harness.manage(lambda s: s.add_rule(created.channel.id, [], None))
    await harness.alerts(["SA300"])
    await harness.deliver()
    for serial in ("SA301", "SA302", "SA303"):
        await harness.alerts([serial])
        await harness.deliver(wait=False)
    assert len(mailbox.envelopes) == 1
    harness.clock.offset += timedelta(hours=1)
    await harness.driver.run(harness.notifier, harness.clock, wait=False)
    assert len(mailbox.envelopes) == 2
    assert all(serial in mailbox.envelopes[1].content.decode() for serial in ("SA301", "SA302", "SA303"))


async def test_a_test_send_reaches_the_channel_without_any_rule(harness: Harness, receiver: Receiver) -> None:
    created: CreatedChannel = await harness.manage(
        lambda s: s.create_channel(ChannelSpec(ChannelKind.WEBHOOK, "ops", url=receiver.url)))
    await harness.manage(lambda s: s.test_send(created.channel.id))
    await harness.driver.run(harness.notifier, harness.clock)
    (request,) = receiver.received
    assert b'"type":"notification.test"' in request.body


def test_rules_match_types_and_severities() -> None:
    assert matches([], None, "sync.failed", None)
    assert matches(["alert.raised"], Severity.MAJOR, "alert.raised", Severity.CRITICAL)
    assert not matches(["alert.raised"], Severity.MAJOR, "alert.raised", Severity.MINOR)
    assert not matches(["alert.raised"], None, "alert.cleared", Severity.MAJOR)
    assert not matches([], Severity.INFO, "campaign.finished", None)


def test_quiet_hours_across_midnight_end_the_next_morning_in_the_tenant_zone() -> None:
    late = datetime(2026, 7, 1, 22, 30, tzinfo=UTC)  # 23:30 in London (BST)
    assert quiet_until(late, "Europe/London", time(22), time(7)) == datetime(2026, 7, 2, 6, tzinfo=UTC)
    early = datetime(2026, 1, 2, 5, 0, tzinfo=UTC)  # 05:00 in London (GMT)
    assert quiet_until(early, "Europe/London", time(22), time(7)) == datetime(2026, 1, 2, 7, tzinfo=UTC)
    assert quiet_until(datetime(2026, 1, 2, 12, tzinfo=UTC), "Europe/London", time(22), time(7)) is None
    assert quiet_until(late, "Europe/London", None, None) is None
