"""A fleet-wide rate limiter shared through Redis by every process using the same GivEnergy credential.

Each bucket (the credential's global budget, or an endpoint with its own limit) is a sliding-window log:
a sorted set of slots stamped with the Redis clock, so no two processes disagree about time. A slot is
taken when granted and re-stamped when the request's answer arrives (`CredentialLimiter.settle`); it is
free again one window after that. The server counted the request somewhere in between, so no interval of
one window can hold more than ``limit`` requests as the server saw them, whatever the latency and whatever
window alignment the server uses: the limiter never causes a 429. Grants, settlements (with corrections
from the rate-limit headers) and 429 pauses are single Lua scripts: atomic.

Priority lanes: a lane that has work waiting reserves a share of the window against every lower lane,
until it has used that share. A saturated campaign therefore leaves the reserved shares of monitoring and
interactive calls free for them, and takes everything they do not use.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from redis.asyncio import Redis

from service.givenergy._errors import RateLimitedError
from service.givenergy._metrics import LIMITER_WAIT, RATE_LIMITED, TOKENS_LEFT


class Lane(enum.IntEnum):
    """Priority lanes, highest first."""

    INTERACTIVE = 0
    """A person is waiting for the answer."""
    MONITORING = 1
    """Fault and health monitoring."""
    SYNC = 2
    """Mirroring the fleet (devices, settings, history)."""
    CAMPAIGN = 3
    """Bulk control campaigns."""


DEFAULT_RESERVES: Final[Mapping[Lane, float]] = {
    Lane.INTERACTIVE: 0.10,
    Lane.MONITORING: 0.30,
    Lane.SYNC: 0.15,
    Lane.CAMPAIGN: 0.0,
}
"""Share of each window a lane keeps from the lanes below it while it has work waiting."""

GLOBAL_BUCKET: Final = "global"
NOTIFICATION_BUCKET: Final = "notification-send"


@dataclass(frozen=True, slots=True)
class BucketPolicy:
    """A budget: ``limit`` requests per ``window_seconds``."""

    limit: int
    window_seconds: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_seconds <= 0:
            raise ValueError("a bucket needs a positive limit and window")


DEFAULT_CUSTOM_BUCKETS: Final[Mapping[str, BucketPolicy]] = {
    NOTIFICATION_BUCKET: BucketPolicy(limit=10, window_seconds=3600.0),
}


@dataclass(frozen=True, slots=True)
class Grant:
    """A slot granted by the limiter.

    Attributes:
        bucket: The bucket charged.
        waited_seconds: Time spent waiting for the slot.
        expected_remaining: Requests the limiter believed were left in the window after this grant.
        limit: The bucket's limit at the time of the grant.
        lane: The lane charged.
        slot: The slot's identity in the shared log (pass the grant to `CredentialLimiter.settle`).
    """

    bucket: str
    waited_seconds: float
    expected_remaining: int
    limit: int
    lane: Lane = Lane.SYNC
    slot: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class BucketState:
    """A snapshot of a bucket (for dashboards and tests).

    Attributes:
        limit: Effective limit (learned from ``X-RateLimit-Limit`` when seen, else configured).
        used: Grants (and corrections) in the current sliding window.
        paused_for: Seconds left of a pause after a 429 (0 when not paused).
        used_by_lane: Grants per lane in the current window.
        waiting: Lanes with callers waiting.
    """

    limit: int
    used: int
    paused_for: float
    used_by_lane: dict[Lane, int] = field(default_factory=dict)
    waiting: frozenset[Lane] = frozenset()


# KEYS: 1 log, 2..5 per-lane logs, 6..9 per-lane waiters, 10 state hash
# All times are milliseconds of the Redis clock.
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[1])
local learned = redis.call('HGET', KEYS[10], 'limit')
if learned then limit = tonumber(learned) end
local cutoff = now - window
for i = 1, 5 do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', cutoff) end
local paused = tonumber(redis.call('HGET', KEYS[10], 'paused_until') or '0')
"""

# Lane reserves travel as parts per million of the window (ints) and become slots inside the scripts, from
# the effective limit: the one learned from the server's headers when there is one, not the configured one.
_RESERVE_SCALE: Final = 1_000_000

# ARGV: limit, window_ms, lane, member, waiter_ttl_ms, reserve0..reserve3 (ppm), claim_grace_ms
_ACQUIRE = (
    _PRELUDE
    + """
local lane = tonumber(ARGV[3])
local member = ARGV[4]
local waiter_ttl = tonumber(ARGV[5])
local wkey = KEYS[6 + lane]
if paused > now then
  local wait = paused - now
  redis.call('ZADD', wkey, now + wait + waiter_ttl, member)
  redis.call('PEXPIRE', wkey, wait + waiter_ttl + window)
  return {0, wait, 0, limit}
end
local total = redis.call('ZCARD', KEYS[1])
local held = 0
for j = 0, lane - 1 do
  local higher = KEYS[6 + j]
  redis.call('ZREMRANGEBYSCORE', higher, '-inf', now)
  if redis.call('ZCARD', higher) > 0 then
    local reserve = math.floor(limit * tonumber(ARGV[6 + j]) / """
    + str(_RESERVE_SCALE)
    + """)
    local used = redis.call('ZCARD', KEYS[2 + j])
    if reserve > used then held = held + reserve - used end
  end
end
local allowance = limit - held
if total < allowance then
  redis.call('ZADD', KEYS[1], now, member)
  redis.call('ZADD', KEYS[2 + lane], now, member)
  -- While a lane has callers waiting, each grant in it keeps the lane's claim a moment longer: the
  -- caller's next request is usually on its way, and its reserve must not go to a lower lane meanwhile.
  redis.call('ZREMRANGEBYSCORE', wkey, '-inf', now)
  if redis.call('ZCARD', wkey) > 0 then
    redis.call('ZADD', wkey, now + tonumber(ARGV[10]), member)
  end
  redis.call('PEXPIRE', KEYS[1], window * 2)
  redis.call('PEXPIRE', KEYS[2 + lane], window * 2)
  return {1, 0, limit - total - 1, limit}
end
local k = total - allowance
local wait = window
if k >= 0 and k < total then
  local oldest = redis.call('ZRANGE', KEYS[1], k, k, 'WITHSCORES')
  wait = tonumber(oldest[2]) + window - now
end
if wait < 1 then wait = 1 end
redis.call('ZADD', wkey, now + wait + waiter_ttl, member)
redis.call('PEXPIRE', wkey, wait + waiter_ttl + window)
return {0, wait, 0, limit}
"""
)

# ARGV: limit, window_ms, header_limit (or ''), header_remaining (or ''), member_prefix, learn_ttl_ms,
#       settled slot (or ''), its lane
# Settling re-stamps the slot with the time its answer arrived: the server counted the request somewhere
# between grant and answer, so the slot stays taken for a full window after the answer. Whatever the
# latency, no interval of one window can then hold more than ``limit`` requests as the server saw them.
_OBSERVE = (
    _PRELUDE
    + """
local slot = ARGV[7]
if slot ~= '' then
  redis.call('ZADD', KEYS[1], now, slot)
  redis.call('ZADD', KEYS[2 + tonumber(ARGV[8])], now, slot)
  redis.call('PEXPIRE', KEYS[1], window * 2)
  redis.call('PEXPIRE', KEYS[2 + tonumber(ARGV[8])], window * 2)
end
local header_limit = tonumber(ARGV[3])
local remaining = tonumber(ARGV[4])
if header_limit and header_limit > 0 then
  if header_limit ~= limit then
    redis.call('HSET', KEYS[10], 'limit', header_limit)
    limit = header_limit
  end
  redis.call('PEXPIRE', KEYS[10], math.max(tonumber(ARGV[6]), window * 2))
end
local added = 0
if remaining then
  local used_upstream = limit - remaining
  local total = redis.call('ZCARD', KEYS[1])
  if used_upstream > total then
    -- Someone else spends this credential (or the windows disagree): count it until it ages out.
    added = math.min(used_upstream - total, limit)
    for i = 1, added do
      redis.call('ZADD', KEYS[1], now, ARGV[5] .. ':' .. i)
    end
    redis.call('PEXPIRE', KEYS[1], window * 2)
  end
end
return {added, limit}
"""
)

# ARGV: limit, window_ms, pause_ms
_PAUSE = (
    _PRELUDE
    + """
local pause_until = now + tonumber(ARGV[3])
if pause_until > paused then
  redis.call('HSET', KEYS[10], 'paused_until', pause_until)
end
redis.call('PEXPIRE', KEYS[10], math.max(tonumber(ARGV[3]), window) * 2)
return pause_until - now
"""
)

# ARGV: limit, window_ms, lane, horizon_ms, reserve0..reserve3 (ppm)
_CAPACITY = (
    _PRELUDE
    + """
local lane = tonumber(ARGV[3])
local horizon = tonumber(ARGV[4])
local allowance = limit
for j = 0, lane - 1 do allowance = allowance - math.floor(limit * tonumber(ARGV[5 + j]) / """
    + str(_RESERVE_SCALE)
    + """) end
if allowance < 0 then allowance = 0 end
local start = now
if paused > now then
  horizon = horizon - (paused - now)
  start = paused
end
if horizon <= 0 then return 0 end
local first_span = math.min(horizon, window)
local total = redis.call('ZCARD', KEYS[1])
local expiring = redis.call('ZCOUNT', KEYS[1], '-inf', start + first_span - window)
local first = math.min(allowance, math.max(0, allowance - total + expiring))
local rest = math.floor(allowance * math.max(0, horizon - window) / window)
return first + rest
"""
)

# ARGV: limit, window_ms
_STATE = (
    _PRELUDE
    + """
local result = {limit, redis.call('ZCARD', KEYS[1]), math.max(0, paused - now)}
for i = 2, 5 do table.insert(result, redis.call('ZCARD', KEYS[i])) end
for i = 6, 9 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  table.insert(result, redis.call('ZCARD', KEYS[i]))
end
return result
"""
)


class RateLimiter:
    """The shared limiter: one per process, backed by one Redis.

    Build one at start-up and hand each client a view bound to its credential::

        limiter = RateLimiter(redis, namespace=settings.redis.namespace)
        budget = limiter.credential(str(credential.id), requests_per_minute=credential.requests_per_minute)
        client = GivEnergyClient(token, limiter=budget, lane=Lane.SYNC)

    Args:
        redis: An asyncio Redis client (any decode mode).
        namespace: Key prefix shared by all processes of one deployment.
        reserves: Share of the window (0..1) each lane keeps from lower lanes while it has work waiting.
        safety_margin_seconds: Added to every window so that jitter in request latency can never make the
            server see more than ``limit`` requests in one of its windows. Default: 2 % of the window,
            between 0.1 s and 1 s.
        waiter_ttl_seconds: How long a waiting caller's claim outlives its expected wake-up (covers a
            crashed process).
        claim_grace_seconds: How long a lane's claim outlives a grant to a caller that had to wait, so that
            a busy lane's reserve is not taken while its next request is in flight. Default: 2 % of the
            window, between 0.05 s and 1 s.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        namespace: str = "givfleet",
        reserves: Mapping[Lane, float] | None = None,
        safety_margin_seconds: float | None = None,
        waiter_ttl_seconds: float = 2.0,
        claim_grace_seconds: float | None = None,
    ) -> None:
        self._redis = redis
        self._namespace = namespace
        merged = dict(DEFAULT_RESERVES)
        merged.update(reserves or {})
        if any(not 0 <= v <= 1 for v in merged.values()) or sum(merged.values()) > 1:
            raise ValueError("lane reserves must be between 0 and 1 and sum to at most 1")
        self._reserves = merged
        # Reserves as parts per million: the scripts turn them into slots of the effective limit.
        self._reserve_ppm = [round(merged[lane] * _RESERVE_SCALE) for lane in Lane]
        self._margin = safety_margin_seconds
        self._waiter_ttl_ms = int(waiter_ttl_seconds * 1000)
        self._grace = claim_grace_seconds
        self._acquire = redis.register_script(_ACQUIRE)
        self._observe = redis.register_script(_OBSERVE)
        self._pause = redis.register_script(_PAUSE)
        self._capacity = redis.register_script(_CAPACITY)
        self._state = redis.register_script(_STATE)
        self._resume = redis.register_script("return redis.call('HDEL', KEYS[10], 'paused_until')")
        self._ids = itertools.count()
        self._id_prefix = f"{os.getpid()}-{random.getrandbits(32):08x}"

    def __repr__(self) -> str:
        return f"RateLimiter(namespace={self._namespace!r})"

    def credential(
        self,
        credential_id: str,
        *,
        requests_per_minute: int = 300,
        window_seconds: float = 60.0,
        custom_buckets: Mapping[str, BucketPolicy] | None = None,
    ) -> CredentialLimiter:
        """A view of the limiter bound to one credential.

        Args:
            credential_id: A stable identifier of the credential (e.g. its UUID). Never the token itself.
            requests_per_minute: The credential's global budget per window (its tier; 300 by default).
            window_seconds: Length of the global window (60 upstream; tests scale it down).
            custom_buckets: Endpoints with their own limits (defaults: notification send, 10 per hour).

        Returns:
            The bound limiter; cheap, create as many as needed.
        """
        buckets = dict(DEFAULT_CUSTOM_BUCKETS)
        buckets.update(custom_buckets or {})
        buckets[GLOBAL_BUCKET] = BucketPolicy(limit=requests_per_minute, window_seconds=window_seconds)
        return CredentialLimiter(self, credential_id, buckets)

    def _margin_ms(self, window_seconds: float) -> int:
        margin = self._margin if self._margin is not None else min(1.0, max(0.1, 0.02 * window_seconds))
        return int(margin * 1000)

    def _grace_ms(self, window_seconds: float) -> int:
        grace = self._grace if self._grace is not None else min(1.0, max(0.05, 0.02 * window_seconds))
        return int(grace * 1000)

    def _member(self) -> str:
        return f"{self._id_prefix}:{next(self._ids)}"


class CredentialLimiter:
    """The limiter for one credential: acquire slots, report what the server said, plan ahead.

    Obtain it from `RateLimiter.credential`. Every process that uses the same ``credential_id`` and Redis
    namespace shares the same budget.
    """

    def __init__(self, limiter: RateLimiter, credential_id: str, buckets: Mapping[str, BucketPolicy]) -> None:
        self._limiter = limiter
        self.credential_id = credential_id
        self._buckets = dict(buckets)
        self._keys: dict[str, list[str]] = {}

    def __repr__(self) -> str:
        return f"CredentialLimiter(credential_id={self.credential_id!r})"

    def policy(self, bucket: str = GLOBAL_BUCKET) -> BucketPolicy:
        """The configured policy of a bucket."""
        return self._buckets[bucket]

    def has_bucket(self, bucket: str) -> bool:
        """Whether ``bucket`` has a configured policy."""
        return bucket in self._buckets

    def _keys_for(self, bucket: str) -> list[str]:
        keys = self._keys.get(bucket)
        if keys is None:
            base = f"{self._limiter._namespace}:ratelimit:{{{self.credential_id}:{bucket}}}"
            keys = [f"{base}:log"]
            keys += [f"{base}:lane:{lane.value}" for lane in Lane]
            keys += [f"{base}:waiting:{lane.value}" for lane in Lane]
            keys.append(f"{base}:state")
            self._keys[bucket] = keys
        return keys

    def _base_args(self, bucket: str) -> list[Any]:
        policy = self._buckets[bucket]
        window_ms = int(policy.window_seconds * 1000) + self._limiter._margin_ms(policy.window_seconds)
        return [policy.limit, window_ms]

    async def acquire(
        self, *, lane: Lane = Lane.SYNC, bucket: str = GLOBAL_BUCKET, max_wait: float | None = None
    ) -> Grant:
        """Wait for a slot in ``bucket`` and take it.

        Args:
            lane: The caller's priority lane.
            bucket: The bucket to charge (`GLOBAL_BUCKET` unless the endpoint has its own limit).
            max_wait: Give up after this many seconds of waiting (``None``: wait as long as it takes).

        Returns:
            The grant.

        Raises:
            RateLimitedError: ``max_wait`` elapsed before a slot was free.
        """
        keys = self._keys_for(bucket)
        args = self._base_args(bucket)
        member = self._limiter._member()
        started = time.monotonic()
        grace_ms = self._limiter._grace_ms(self._buckets[bucket].window_seconds)
        task = asyncio.current_task()
        cancels_before = task.cancelling() if task is not None else 0
        try:
            while True:
                granted, wait_ms, remaining, limit = await self._limiter._acquire(
                    keys=keys,
                    args=[
                        *args,
                        lane.value,
                        member,
                        self._limiter._waiter_ttl_ms,
                        *self._limiter._reserve_ppm,
                        grace_ms,
                    ],
                )
                if task is not None and task.cancelling() > cancels_before:
                    # redis-py (5.x) can lose a cancellation that arrives while a command is in flight. One that
                    # reached this call is honoured here (a slot just granted is given back first), or a
                    # cancelled caller would take its slot and send its request. Cancellations lost elsewhere
                    # are the stopping side's business: stop background work with `cancel_and_wait`.
                    if granted:
                        await self._release(keys, lane, member)
                    raise asyncio.CancelledError
                if granted:
                    waited = time.monotonic() - started
                    LIMITER_WAIT.labels(lane=lane.name.lower()).observe(waited)
                    return Grant(
                        bucket=bucket,
                        waited_seconds=waited,
                        expected_remaining=int(remaining),
                        limit=int(limit),
                        lane=lane,
                        slot=member,
                    )
                delay = int(wait_ms) / 1000
                if max_wait is not None and time.monotonic() - started + delay > max_wait:
                    raise RateLimitedError(
                        f"no {bucket} slot for lane {lane.name.lower()} within {max_wait:.1f} s",
                        retry_after=delay,
                        status_code=None,
                    )
                # A little jitter spreads the herd of waiters that computed the same wake-up time.
                await asyncio.sleep(delay + random.uniform(0, 0.005))  # noqa: S311
        except BaseException:
            await self._withdraw(keys, lane, member)
            raise

    async def _release(self, keys: list[str], lane: Lane, member: str) -> None:
        # A slot granted to a caller that will not use it: free it now rather than one window later.
        await asyncio.shield(self._limiter._redis.zrem(keys[0], member))
        await asyncio.shield(self._limiter._redis.zrem(keys[1 + lane.value], member))

    async def _withdraw(self, keys: list[str], lane: Lane, member: str) -> None:
        # Best effort: an abandoned claim also expires on its own.
        with contextlib.suppress(Exception):
            await asyncio.shield(self._limiter._redis.zrem(keys[5 + lane.value], member))

    async def settle(self, grant: Grant, *, limit: int | None = None, remaining: int | None = None) -> None:
        """Record that the request of ``grant`` got its answer (or failed), with the answer's headers.

        The slot is re-stamped with the current time so it stays taken for one window after the answer
        (the server counted the request at some point before). Call it once per grant, whatever happened;
        the client does.

        Args:
            grant: The grant of the request.
            limit: ``X-RateLimit-Limit`` of the answer, if any.
            remaining: ``X-RateLimit-Remaining`` of the answer, if any.
        """
        await self._report(grant.bucket, limit=limit, remaining=remaining, grant=grant)

    async def observe(self, bucket: str, *, limit: int | None, remaining: int | None) -> None:
        """Correct the bucket from ``X-RateLimit-Limit`` / ``X-RateLimit-Remaining`` of a response.

        A different limit is learned (commercial tiers, a lowered limit); a ``remaining`` lower than the
        limiter's own count means someone else spends this credential, and the difference is counted
        until it ages out of the window.
        """
        if limit is None and remaining is None:
            return
        await self._report(bucket, limit=limit, remaining=remaining, grant=None)

    async def _report(self, bucket: str, *, limit: int | None, remaining: int | None, grant: Grant | None) -> None:
        if remaining is not None:
            TOKENS_LEFT.labels(credential=self.credential_id, bucket=bucket).set(remaining)
        await self._limiter._observe(
            keys=self._keys_for(bucket),
            args=[
                *self._base_args(bucket),
                "" if limit is None else limit,
                "" if remaining is None else remaining,
                f"ext:{self._limiter._member()}",
                3_600_000,
                grant.slot if grant is not None else "",
                grant.lane.value if grant is not None else 0,
            ],
        )

    async def pause(self, bucket: str, seconds: float | None) -> float:
        """Stop every process from using ``bucket`` for ``seconds`` (after a 429).

        Args:
            bucket: The bucket that answered 429.
            seconds: ``Retry-After`` when the server sent one; ``None`` pauses for a whole window.

        Returns:
            Seconds until the bucket reopens.
        """
        RATE_LIMITED.labels(bucket=bucket).inc()
        policy = self._buckets[bucket]
        pause = seconds if seconds is not None and seconds >= 0 else policy.window_seconds
        pause_ms = int(pause * 1000) + self._limiter._margin_ms(policy.window_seconds)
        result = await self._limiter._pause(keys=self._keys_for(bucket), args=[*self._base_args(bucket), pause_ms])
        return int(result) / 1000

    async def resume(self, bucket: str = GLOBAL_BUCKET) -> None:
        """Lift a pause early (an operator's decision; the server may still answer 429)."""
        await self._limiter._resume(keys=self._keys_for(bucket), args=[])

    async def capacity(self, lane: Lane, horizon_seconds: float, *, bucket: str = GLOBAL_BUCKET) -> int:
        """How many requests ``lane`` can expect to make in the next ``horizon_seconds``.

        An estimate for ETAs: it assumes the lanes above take their reserved shares and the lanes below
        give way, and accounts for the grants already in the window and a running pause.

        Args:
            lane: The lane asking.
            horizon_seconds: The planning horizon.
            bucket: The bucket (global by default).

        Returns:
            The number of requests.
        """
        result = await self._limiter._capacity(
            keys=self._keys_for(bucket),
            args=[*self._base_args(bucket), lane.value, int(horizon_seconds * 1000), *self._limiter._reserve_ppm],
        )
        return int(result)

    async def state(self, bucket: str = GLOBAL_BUCKET) -> BucketState:
        """A snapshot of ``bucket``."""
        raw = await self._limiter._state(keys=self._keys_for(bucket), args=self._base_args(bucket))
        values = [int(v) for v in raw]
        lanes = list(Lane)
        return BucketState(
            limit=values[0],
            used=values[1],
            paused_for=values[2] / 1000,
            used_by_lane={lane: values[3 + i] for i, lane in enumerate(lanes)},
            waiting=frozenset(lane for i, lane in enumerate(lanes) if values[7 + i] > 0),
        )

    async def clear(self) -> None:
        """Forget everything about this credential's buckets (tests, credential rotation)."""
        keys = [key for bucket in self._buckets for key in self._keys_for(bucket)]
        await self._limiter._redis.delete(*keys)
