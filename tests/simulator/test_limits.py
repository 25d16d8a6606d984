"""Rate limits (global and custom, per token, on real monotonic time) and injected server errors."""

from __future__ import annotations

import pytest

from service.simulator import Simulator, SimulatorConfig
from service.simulator.ratelimit import RateLimiter
from tests.simulator.conftest import client_factory

NOTE = {"platforms": ["push"], "title": "Battery low", "body": "The battery went below its reserve"}


class FakeMonotonic:
    """A hand-moved monotonic clock: the limiter's windows run on real time, which tests must not sleep on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limited(limit: int = 5, window: float = 60.0, **overrides: object) -> tuple[Simulator, FakeMonotonic]:
    sim = Simulator(SimulatorConfig.quiet(rate_limit_per_window=limit, rate_limit_window_seconds=window, **overrides))
    clock = FakeMonotonic()
    sim.limiter = RateLimiter(monotonic=clock)
    return sim, clock


async def test_429_past_the_limit_with_headers_then_recovery_after_the_window() -> None:
    sim, clock = limited(limit=5, window=60)
    async with client_factory(sim)("company") as api:
        answers = [await api.get("/account") for _ in range(6)]
        clock.now += 30
        still_limited = await api.get("/account")
        clock.now += 31
        recovered = await api.get("/account")
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
    assert all(a.headers["X-RateLimit-Limit"] == "5" for a in answers)
    assert answers[5].headers["Retry-After"] == "60"
    assert still_limited.status_code == 429
    assert still_limited.headers["Retry-After"] == "30"
    assert recovered.status_code == 200
    assert recovered.headers["X-RateLimit-Remaining"] == "4"
    counters = sim.truth.counters()["company"]
    assert counters.requests == 8
    assert counters.throttled == 2


async def test_limits_are_per_token() -> None:
    sim, _ = limited(limit=2)
    async with client_factory(sim)("company") as company, client_factory(sim)("customer") as customer:
        exhausted = [(await company.get("/account")).status_code for _ in range(3)]
        other = await customer.get("/account")
    assert exhausted == [200, 200, 429]
    assert other.status_code == 200
    assert other.headers["X-RateLimit-Remaining"] == "1"


async def test_every_answer_counts_and_carries_headers() -> None:
    sim, _ = limited(limit=3)
    async with client_factory(sim)("company") as api:
        missing = await api.get("/inverter/NOPE000000/system-data/latest")
        invalid = await api.get("/communication-device", params={"page": "x"})
        ok = await api.get("/account")
    assert (missing.status_code, invalid.status_code, ok.status_code) == (404, 422, 200)
    assert [r.headers["X-RateLimit-Remaining"] for r in (missing, invalid, ok)] == ["2", "1", "0"]


async def test_notification_limit_is_separate_from_the_global_one() -> None:
    sim, clock = limited(limit=3)
    async with client_factory(sim)("company") as api:
        notes = [await api.post("/notification/send", json=NOTE) for _ in range(11)]
        after_notes = await api.get("/account")
        global_exhausted = [(await api.get("/account")).status_code for _ in range(3)]
        note_while_global_exhausted = await api.post("/notification/send", json=NOTE)
        clock.now += 3600
        note_next_hour = await api.post("/notification/send", json=NOTE)
    assert [n.status_code for n in notes] == [200] * 10 + [429]
    assert notes[0].headers["X-RateLimit-Limit"] == "10"
    assert notes[9].headers["X-RateLimit-Remaining"] == "0"
    assert notes[10].headers["Retry-After"] == "3600"
    # Ten notifications did not touch the global budget of three.
    assert after_notes.headers["X-RateLimit-Remaining"] == "2"
    assert global_exhausted == [200, 200, 429]
    assert note_while_global_exhausted.status_code == 429  # its own bucket is still spent
    assert note_next_hour.status_code == 200
    assert len(sim.truth.notifications()) == 11


async def test_notification_content_rules() -> None:
    sim, _ = limited(limit=50)
    async with client_factory(sim)("company") as api:
        with_email = await api.post("/notification/send", json=NOTE | {"body": "write to me@example.com"})
        with_url = await api.post("/notification/send", json=NOTE | {"title": "see www.example.com"})
        no_platform = await api.post("/notification/send", json=NOTE | {"platforms": []})
    for refused, field in ((with_email, "body"), (with_url, "title"), (no_platform, "platforms")):
        assert refused.status_code == 422
        assert field in refused.json()["errors"]


async def test_limits_can_be_disabled_but_headers_remain() -> None:
    sim, _ = limited(limit=2, rate_limits_enabled=False)
    async with client_factory(sim)("company") as api:
        answers = [await api.get("/account") for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert all(a.headers["X-RateLimit-Limit"] == "2" for a in answers)


@pytest.mark.parametrize(("field", "statuses"), [("server_error_probability", {500, 502, 503}),
                                                 ("gateway_timeout_probability", {504})])  # fmt: skip
async def test_injected_server_errors(field: str, statuses: set[int]) -> None:
    sim = Simulator(SimulatorConfig.quiet(**{field: 1.0}))
    async with client_factory(sim)("company") as api:
        answers = [await api.get("/communication-device") for _ in range(12)]
    assert {a.status_code for a in answers} <= statuses
    assert all("X-RateLimit-Remaining" in a.headers for a in answers)


async def test_errors_are_occasional_at_a_fractional_probability() -> None:
    sim = Simulator(SimulatorConfig.quiet(server_error_probability=0.3, rate_limits_enabled=False))
    async with client_factory(sim)("company") as api:
        statuses = [(await api.get("/account")).status_code for _ in range(200)]
    failures = sum(status >= 500 for status in statuses)
    assert 20 < failures < 120
    assert statuses.count(200) == 200 - failures
