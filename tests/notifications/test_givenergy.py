"""The GivEnergy channel: a burst of alerts becomes at most 10 notifications an hour, with every alert in one."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx

from service.core.clock import utcnow
from service.core.principal import Principal
from service.db.models.notifications import ChannelKind
from service.jobs.enqueue import unit_of_work
from service.notifications.digest import EventView, for_givenergy, sanitize
from service.notifications.service import ChannelSpec
from service.settings import GivEnergySettings
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
    # Half a simulated hour per real second: the notification window is two real seconds on both sides.
    sim = quiet_simulator(20, rate_limits_enabled=True, clock_speed=1800.0, notification_window_seconds=2.0)
    resources = harness.resources
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        await CredentialService(session, Principal.cli(harness.tenant_id), load_key_ring(resources.settings)).add(
            sim.tokens["company"], base_url="http://simulator.test/v1")
    settings = resources.settings.model_copy(update={"givenergy": GivEnergySettings(notification_window_seconds=2.0)})
    harness.upstream = Upstream(settings, resources.redis, resources.session_factory,
                                Route(transport=httpx.ASGITransport(app=sim.app)))
    created = await harness.manage(lambda s: s.create_channel(ChannelSpec(ChannelKind.GIVENERGY, "installer app")))
    await harness.manage(lambda s: s.add_rule(created.channel.id, [], None))

    summaries = []
    for volley in range(20):  # 20 volleys of 5 alerts, each relayed and sent while the next ones arrive
        summaries += await harness.alerts([f"FA{volley:02d}X{i}" for i in range(5)],
                                          ("PV Over Voltage", "Battery Low")[volley % 2], site=volley % 9)
        await harness.deliver(wait=False)
    await harness.deliver()

    sent = sim.truth.notifications()
    assert most_in_an_hour([note["time"] for note in sent]) <= 10
    assert sim.truth.counters()["company"].throttled == 0  # no 429
    assert 10 < len(sent) < 100  # the budget was spent, then digests carried the rest
    bodies = [note["body"] for note in sent]
    assert [s for s in summaries if not any(s in body for body in bodies)] == []
    assert any(note["title"].endswith("sites") for note in sent)  # "N new faults at M sites"


def test_the_sanitizer_removes_what_givenergy_refuses() -> None:
    text = ("Call +44 (0)20 7946 0958 or mail ops@example.co.uk, see https://status.example.com/x and "
            "www.example.org: inverter SA2114G047 site 12")
    cleaned = sanitize(text)
    for refused in ("0958", "ops@", "https", "www.", "example"):
        assert refused not in cleaned
    assert "SA2114G047" in cleaned
    assert "site 12" in cleaned


def test_a_plain_fallback_says_how_many_events_without_any_detail() -> None:


    events = [EventView(uuid.uuid4(), "alert.raised", "major", f"Fault on inverter X{i}", utcnow()) for i in range(3)]
    plain = for_givenergy(events, plain=True)
    assert plain.body.startswith("3 new events")
    assert "X1" not in plain.body
    assert "X1" in for_givenergy(events).body
