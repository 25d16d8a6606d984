"""The GivEnergy channel: a burst of alerts becomes at most 10 notifications an hour, with every alert in one."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select

from service.core.clock import utcnow
from service.core.principal import Principal
from service.db.models.notifications import AttemptStatus, ChannelKind, NotificationAttempt
from service.jobs.enqueue import unit_of_work
from service.notifications.digest import BODY_MAX, EventView, for_givenergy, sanitize
from service.notifications.service import ChannelSpec
from service.settings import GivEnergySettings
from service.simulator import Simulator
from service.tenants.crypto import load_key_ring
from service.tenants.service import CredentialService
from service.upstream import Route, Upstream
from tests.mirror.conftest import quiet_simulator
from tests.notifications.conftest import Harness

HOUR = timedelta(hours=1)


def most_in_an_hour(times: list[datetime]) -> int:
    """The largest number of ``times`` inside any 60 minutes."""
    ordered = sorted(times)
    return max((sum(1 for t in ordered[i:] if t - start < HOUR) for i, start in enumerate(ordered)), default=0)


async def test_a_burst_of_100_alerts_is_at_most_10_notifications_an_hour_and_each_alert_is_in_one(
        harness: Harness) -> None:
    # One simulated hour per two real seconds: the notification window is two real seconds on both sides (a
    # send's time on the wire is a small share of it, so a send held up under load does not make an hour look
    # like eleven). Digests of at most 5 events: the burst needs 20 of them, twice the hour's budget.
    sim = quiet_simulator(20, rate_limits_enabled=True, clock_speed=1800.0, notification_window_seconds=2.0)
    harness.settings = harness.settings.model_copy(update={"digest_max_events": 5})
    await _givenergy_channel(harness, sim, 2.0)
    summaries = await harness.alerts([f"FA{index:03d}X" for index in range(100)], site=range(9))
    await harness.deliver()

    sent = sim.truth.notifications()
    assert most_in_an_hour([note["time"] for note in sent]) <= 10
    assert sim.truth.counters()["company"].throttled == 0  # no 429
    assert len(sent) == 20  # ten in the first hour, the rest waited for the next
    bodies = [note["body"] for note in sent]
    assert [s for s in summaries if not any(s in body for body in bodies)] == []
    assert re.fullmatch(r"5 new faults at [2-5] sites", sent[0]["title"])


def test_the_sanitizer_removes_what_givenergy_refuses() -> None:
    text = ("Call +44 (0)20 7946 0958 or mail ops@example.co.uk, see https://status.example.com/x and "
            "www.example.org: inverter SA2114G047 site 12")
    cleaned = sanitize(text)
    for refused in ("0958", "ops@", "https", "www.", "example"):
        assert refused not in cleaned
    assert "SA2114G047" in cleaned
    assert "site 12" in cleaned


def test_a_plain_fallback_counts_every_event_by_type_without_any_detail() -> None:
    events = [EventView(uuid.uuid4(), "alert.raised", "major", f"Fault on inverter X{i}", utcnow()) for i in range(3)]
    events.append(EventView(uuid.uuid4(), "campaign.finished", None, "Campaign X9 finished", utcnow()))
    plain = for_givenergy(events, plain=True)
    assert plain.body == "4 new events (3 alert raised, 1 campaign finished); open givfleet for the details"
    assert "X1" not in plain.body
    assert "X1" in for_givenergy(events).body


async def _givenergy_channel(harness: Harness, sim: Simulator, window: float,
                             transport: httpx.AsyncBaseTransport | None = None) -> None:
    resources = harness.resources
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        await CredentialService(session, Principal.cli(harness.tenant_id), load_key_ring(resources.settings)).add(
            sim.tokens["company"], base_url="http://simulator.test/v1")
    settings = resources.settings.model_copy(update={"givenergy": GivEnergySettings(
        notification_window_seconds=window)})
    harness.upstream = Upstream(settings, resources.redis, resources.session_factory,
                                Route(transport=transport or httpx.ASGITransport(app=sim.app)))
    created = await harness.manage(lambda s: s.create_channel(ChannelSpec(ChannelKind.GIVENERGY, "installer app")))
    await harness.manage(lambda s: s.add_rule(created.channel.id, [], None))


async def test_a_429_from_a_budget_spent_elsewhere_pauses_the_channel_until_retry_after(harness: Harness) -> None:
    sim = quiet_simulator(20, rate_limits_enabled=True, notification_window_seconds=2.0)
    await _givenergy_channel(harness, sim, 2.0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://simulator.test/v1",
                                 headers={"Authorization": f"Bearer {sim.tokens['company']}"}) as other_app:
        for _ in range(10):  # another application spends the token's notification budget
            answer = await other_app.post("/notification/send", json={"platforms": ["persist"], "title": "t",
                                                                      "body": "b"})
            assert answer.status_code == 200
    (summary,) = await harness.alerts(["SA500"])
    await harness.deliver()

    assert sim.truth.counters()["company"].throttled == 1  # one 429, then it waited as told
    assert summary in sim.truth.notifications()[-1]["body"]


async def test_a_digest_too_long_for_one_body_is_split_and_every_alert_is_in_full_in_one(harness: Harness) -> None:
    sim = quiet_simulator(20)
    await _givenergy_channel(harness, sim, 3600.0)
    long_name = " ".join(["Battery Over Temperature"] * 5)
    summaries = await harness.alerts([f"LG{index:03d}X" for index in range(25)], long_name)
    await harness.deliver()

    bodies = [note["body"] for note in sim.truth.notifications()]
    assert len(bodies) >= 2
    assert all(len(body) <= BODY_MAX for body in bodies)
    assert [s for s in summaries if not any(s in body for body in bodies)] == []


async def test_a_channel_whose_credential_was_deleted_fails_clearly_and_uses_no_other_token(
        harness: Harness) -> None:
    sim = quiet_simulator(20)
    await _givenergy_channel(harness, sim, 3600.0)  # a tenant credential, and a channel using the best one
    resources = harness.resources
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        pinned = await CredentialService(session, Principal.cli(harness.tenant_id), load_key_ring(
            resources.settings)).add(sim.tokens["company"], label="pinned", base_url="http://simulator.test/v1")
    created = await harness.manage(lambda s: s.create_channel(ChannelSpec(ChannelKind.GIVENERGY, "pinned",
                                                                          credential_id=pinned.id)))
    await harness.manage(lambda s: s.add_rule(created.channel.id, [], None))
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        await CredentialService(session, Principal.cli(harness.tenant_id), load_key_ring(
            resources.settings)).remove(pinned.id)
    await harness.alerts(["SA700"])
    await harness.deliver(wait=False)

    assert len(sim.truth.notifications()) == 1  # the other channel's only
    async with harness.resources.session_factory() as session:
        (attempt,) = (await session.scalars(select(NotificationAttempt).where(
            NotificationAttempt.channel_id == created.channel.id))).all()
    assert attempt.status is AttemptStatus.FAILED
    assert attempt.excerpt == "the channel's credential was deleted: no other token is used"


class RefusingIsolation(httpx.AsyncBaseTransport):
    """GivEnergy changed its validation: bodies naming "Isolation" are refused (422)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/notification/send") and b"Isolation" in request.content:
            return httpx.Response(422, json={"message": "The body is invalid.",
                                             "errors": {"body": ["The body is invalid."]}})
        return await self.inner.handle_async_request(request)


async def test_a_text_givenergy_newly_refuses_is_sent_as_a_plain_count(harness: Harness) -> None:
    sim = quiet_simulator(20)
    await _givenergy_channel(harness, sim, 3600.0, RefusingIsolation(httpx.ASGITransport(app=sim.app)))
    await harness.alerts(["SA600"], "Isolation Fault")
    await harness.deliver()

    (note,) = sim.truth.notifications()
    assert note["body"] == "1 new events (1 alert raised); open givfleet for the details"
    async with harness.resources.session_factory() as session:
        tries = (await session.scalars(select(NotificationAttempt).order_by(NotificationAttempt.number))).all()
    assert [(a.status, a.response_code) for a in tries] == [(AttemptStatus.FAILED, 422),
                                                             (AttemptStatus.SUCCEEDED, 200)]
