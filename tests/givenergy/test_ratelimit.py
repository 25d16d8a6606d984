"""The shared limiter on a real Redis: window budget, pauses, learning from headers, lanes, capacity."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from redis.asyncio import Redis

from service.givenergy import (
    GLOBAL_BUCKET,
    NOTIFICATION_BUCKET,
    CredentialLimiter,
    Lane,
    RateLimitedError,
    RateLimiter,
)


async def grant_until_blocked(
    limiter_view: CredentialLimiter, lane: Lane, *, bucket: str = GLOBAL_BUCKET, cap: int = 1000
) -> int:
    """Take slots without waiting until the limiter refuses; return how many were granted."""
    granted = 0
    for _ in range(cap):
        try:
            await limiter_view.acquire(lane=lane, bucket=bucket, max_wait=0)
        except RateLimitedError:
            return granted
        granted += 1
    return granted


async def test_no_more_than_the_limit_is_granted_in_one_window(limiter: RateLimiter) -> None:
    budget = limiter.credential("cred-a", requests_per_minute=25, window_seconds=30)
    assert await grant_until_blocked(budget, Lane.INTERACTIVE) == 25
    state = await budget.state()
    assert state.used == 25
    assert state.used_by_lane[Lane.INTERACTIVE] == 25


async def test_processes_sharing_a_credential_share_one_budget(redis: Redis, limiter: RateLimiter) -> None:
    # A second RateLimiter object stands for another process: same Redis, same namespace.
    other = RateLimiter(redis, namespace=limiter._namespace)
    first = limiter.credential("cred-b", requests_per_minute=10, window_seconds=30)
    second = other.credential("cred-b", requests_per_minute=10, window_seconds=30)
    assert await grant_until_blocked(first, Lane.SYNC) + await grant_until_blocked(second, Lane.SYNC) == 10
    # Another credential is not affected.
    assert await grant_until_blocked(limiter.credential("cred-c", requests_per_minute=3), Lane.SYNC) == 3


async def test_slots_come_back_when_the_window_slides(limiter: RateLimiter) -> None:
    budget = limiter.credential("cred-d", requests_per_minute=5, window_seconds=0.3)
    assert await grant_until_blocked(budget, Lane.SYNC) == 5
    grant = await budget.acquire(lane=Lane.SYNC, max_wait=5)
    assert grant.waited_seconds > 0


async def test_custom_bucket_does_not_touch_the_global_budget(limiter: RateLimiter) -> None:
    budget = limiter.credential("cred-e", requests_per_minute=5, window_seconds=30)
    assert await grant_until_blocked(budget, Lane.SYNC, bucket=NOTIFICATION_BUCKET) == 10
    assert await grant_until_blocked(budget, Lane.SYNC) == 5


async def test_a_429_pause_stops_every_process(redis: Redis, limiter: RateLimiter) -> None:
    other = RateLimiter(redis, namespace=limiter._namespace).credential("cred-f", requests_per_minute=100)
    budget = limiter.credential("cred-f", requests_per_minute=100)
    reopens_in = await budget.pause(GLOBAL_BUCKET, 30)
    assert reopens_in >= 30
    with pytest.raises(RateLimitedError) as caught:
        await other.acquire(lane=Lane.INTERACTIVE, max_wait=1)
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 25
    assert (await other.state()).paused_for > 25


async def test_headers_teach_the_limit_and_outside_usage(limiter: RateLimiter) -> None:
    budget = limiter.credential("cred-g", requests_per_minute=300, window_seconds=30)
    await budget.observe(GLOBAL_BUCKET, limit=20, remaining=20)
    assert (await budget.state()).limit == 20
    # Upstream says 15 are used while we granted none: someone else spends the token.
    await budget.observe(GLOBAL_BUCKET, limit=20, remaining=5)
    assert await grant_until_blocked(budget, Lane.INTERACTIVE) == 5


async def wait_until_waiting(budget: CredentialLimiter, lane: Lane) -> None:
    """Poll the limiter's own state until ``lane`` has a caller registered as waiting."""
    for _ in range(500):
        if lane in (await budget.state()).waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{lane.name} never registered as waiting")


async def test_lower_lanes_leave_the_reserve_of_a_waiting_higher_lane(limiter: RateLimiter) -> None:
    # Limit 20: interactive reserves 2, monitoring 6, sync 3 while they have work waiting.
    budget = limiter.credential("cred-h", requests_per_minute=20, window_seconds=30)
    await budget.pause(GLOBAL_BUCKET, 30)
    monitoring = asyncio.create_task(budget.acquire(lane=Lane.MONITORING))
    await wait_until_waiting(budget, Lane.MONITORING)
    await budget.resume()
    # The campaign and sync lanes stop at 20 - 6: the waiting monitoring call's share stays free.
    assert await grant_until_blocked(budget, Lane.CAMPAIGN) == 14
    assert await grant_until_blocked(budget, Lane.SYNC) == 0
    # Interactive is above monitoring: it may use the whole window.
    assert await grant_until_blocked(budget, Lane.INTERACTIVE, cap=3) == 3
    monitoring.cancel()
    with pytest.raises(asyncio.CancelledError):
        await monitoring
    # Once monitoring has nothing waiting, its share is free for anyone.
    assert Lane.MONITORING not in (await budget.state()).waiting
    assert await grant_until_blocked(budget, Lane.CAMPAIGN) == 3


async def test_reserves_follow_the_learned_limit_not_the_configured_one(limiter: RateLimiter) -> None:
    # Configured 1000, learned 300: monitoring's reserve is 30 % of 300 (90), not 300 of 1000 (which would
    # hold back the whole learned window and make every lower lane sleep a window for nothing).
    budget = limiter.credential("cred-learned", requests_per_minute=1000, window_seconds=30)
    await budget.observe(GLOBAL_BUCKET, limit=300, remaining=300)
    # Capacity plans from the learned limit too: 300 less interactive 30, monitoring 90, sync 45.
    assert await budget.capacity(Lane.CAMPAIGN, 30) == 135
    await budget.pause(GLOBAL_BUCKET, 30)
    monitoring = asyncio.create_task(budget.acquire(lane=Lane.MONITORING))
    await wait_until_waiting(budget, Lane.MONITORING)
    await budget.resume()
    # The lower lane gets its slots at once (max_wait=0), up to 300 - 90.
    assert await grant_until_blocked(budget, Lane.CAMPAIGN, cap=400) == 210
    assert await grant_until_blocked(budget, Lane.MONITORING, cap=100) == 90
    monitoring.cancel()
    with pytest.raises(asyncio.CancelledError):
        await monitoring


async def test_a_higher_lane_that_used_its_reserve_holds_nothing_back(limiter: RateLimiter) -> None:
    budget = limiter.credential("cred-i", requests_per_minute=20, window_seconds=30)
    assert await grant_until_blocked(budget, Lane.MONITORING, cap=6) == 6
    await budget.pause(GLOBAL_BUCKET, 30)
    monitoring = asyncio.create_task(budget.acquire(lane=Lane.MONITORING))
    await wait_until_waiting(budget, Lane.MONITORING)
    await budget.resume()
    assert await grant_until_blocked(budget, Lane.CAMPAIGN) == 14
    monitoring.cancel()


async def test_capacity_planning(limiter: RateLimiter) -> None:
    budget = limiter.credential("cred-j", requests_per_minute=100, window_seconds=10)
    interactive = await budget.capacity(Lane.INTERACTIVE, 60)
    campaign = await budget.capacity(Lane.CAMPAIGN, 60)
    assert interactive > campaign > 0
    # Roughly 45 per window (100 less the reserves above it) for six windows.
    assert 200 <= campaign <= 45 * 6
    assert await budget.capacity(Lane.CAMPAIGN, 5) <= 45
    await grant_until_blocked(budget, Lane.CAMPAIGN, cap=40)
    assert await budget.capacity(Lane.CAMPAIGN, 5) <= 5
    await budget.pause(GLOBAL_BUCKET, 30)
    assert await budget.capacity(Lane.INTERACTIVE, 20) == 0
    assert await budget.capacity(Lane.INTERACTIVE, 60) > 0


async def test_acquire_gives_up_after_max_wait(limiter: RateLimiter) -> None:
    budget = limiter.credential("cred-k", requests_per_minute=1, window_seconds=30)
    await budget.acquire(lane=Lane.SYNC)
    with pytest.raises(RateLimitedError) as caught:
        await budget.acquire(lane=Lane.SYNC, max_wait=0.5)
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 20
    # A caller that gave up leaves no claim behind.
    assert (await budget.state()).waiting == frozenset()


async def test_a_settled_slot_stays_taken_for_a_window_after_the_answer(limiter: RateLimiter) -> None:
    # The server counts a request somewhere between grant and answer: only a full window after the answer
    # is the slot surely free again, however slow the request was.
    budget = limiter.credential("cred-l", requests_per_minute=2, window_seconds=2.0)
    slow = await budget.acquire(lane=Lane.SYNC)
    await budget.acquire(lane=Lane.SYNC)
    await asyncio.sleep(1.5)
    await budget.settle(slow, limit=2, remaining=0)
    await asyncio.sleep(0.8)  # the unsettled grant has aged out; the settled one has not
    state = await budget.state()
    assert state.used == 1
    assert state.used_by_lane[Lane.SYNC] == 1


class CancelLosingRedis(Redis):
    """A real Redis client whose script calls lose a cancellation that arrives while they are in flight, as
    redis-py 5 sometimes does mid-command."""

    in_flight: asyncio.Event

    async def evalsha(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
        self.in_flight.set()
        with contextlib.suppress(asyncio.CancelledError):  # the library's fault, injected
            await asyncio.get_running_loop().create_future()
        return await super().evalsha(*args, **kwargs)  # type: ignore[arg-type]


async def test_a_cancelled_acquire_ends_even_when_redis_loses_the_cancellation(
    redis_url: str, redis_namespace: str
) -> None:
    client = CancelLosingRedis.from_url(redis_url)
    client.in_flight = asyncio.Event()
    try:
        budget = RateLimiter(client, namespace=f"{redis_namespace}:lost-cancel").credential("cred-m")
        caller = asyncio.create_task(budget.acquire(lane=Lane.CAMPAIGN))
        await client.in_flight.wait()
        caller.cancel()
        # Without the guard the caller would get its slot and go on (a cancelled campaign tick sending requests).
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(caller, timeout=10)
        plain = Redis.from_url(redis_url)
        try:  # the slot Redis granted meanwhile is given back at once, not one window later
            state = await RateLimiter(plain, namespace=f"{redis_namespace}:lost-cancel").credential("cred-m").state()
        finally:
            await plain.aclose()
        assert (state.used, state.used_by_lane[Lane.CAMPAIGN]) == (0, 0)
    finally:
        await client.aclose()
