"""A short-lived, in-process cache of authenticated API keys, told of revocations over Redis pub/sub.

A request whose key was authenticated within ``security.api_key_cache_seconds`` is served without reading the
database. Revoking a key (or suspending a tenant) publishes a notice on the deployment's
:data:`REVOCATIONS` channel once its transaction has committed (:func:`service.db.uow.defer_notice`); every
process forgets the key at once (the one that committed it before its next request; the others as soon as the
notice arrives), so a revoked key stops working within milliseconds, not the cache's lifetime.

Safety: the cache serves only while its process is subscribed (a notice missed while disconnected could leave
a revoked key cached); it is emptied whenever the subscription drops. A connection can also die silently (no
reset; a proxy or network that swallows packets), so the subscription pings Redis every
:data:`PING_SECONDS` and the cache serves only while Redis was heard (a pong or a notice) within
:data:`HEARD_WITHIN_SECONDS`; after a longer silence it is emptied and the subscription made again.
A lookup that started before a notice arrived is not cached (:attr:`ApiKeyCache.generation`).
Expiry is checked on every hit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import structlog
from redis.asyncio import ConnectionPool, Redis

from service.core.principal import Principal
from service.tenants import apikeys

log = structlog.get_logger(__name__)

REVOCATIONS = "api-key-revocations"
"""The pub/sub channel of revocation notices (namespaced like every Redis name of the deployment)."""
MAX_ENTRIES = 10_000
"""Keys cached at most; when full, the cache starts again empty (a deployment has far fewer active keys)."""
RESUBSCRIBE_SECONDS = 1.0
PING_SECONDS = 0.5
"""How often the subscription pings Redis to prove the connection still carries notices."""
HEARD_WITHIN_SECONDS = 1.0
"""The cache serves only if Redis answered on the subscription within this long (else notices may be lost)."""


def key_notice(key_id: uuid.UUID) -> str:
    """The notice that a key was revoked."""
    return f"key:{key_id}"


def tenant_notice(tenant_id: uuid.UUID) -> str:
    """The notice that a tenant's keys stopped working (suspension)."""
    return f"tenant:{tenant_id}"


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    expires_at: datetime | None
    fresh_until: float


class ApiKeyCache:
    """Principals of recently authenticated keys, by the digest of the presented key."""

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[bytes, _Entry] = {}
        self._generation = 0
        self.subscribed = False
        self._heard_at = -HEARD_WITHIN_SECONDS
        self._stopping = asyncio.Event()

    @property
    def generation(self) -> int:
        """Changes whenever a notice arrives or the subscription drops: take it before a lookup, give it to
        :meth:`put`."""
        return self._generation

    @property
    def listening(self) -> bool:
        """Whether notices are being heard: subscribed, and Redis heard from recently."""
        return self.subscribed and time.monotonic() - self._heard_at <= HEARD_WITHIN_SECONDS

    def get(self, presented: str, now: datetime) -> Principal | None:
        """The cached principal of ``presented``, if it is fresh, unexpired, and notices are being heard."""
        if not self.listening:
            return None
        entry = self._entries.get(apikeys.digest(presented))
        if entry is None or entry.fresh_until < time.monotonic() or (
                entry.expires_at is not None and entry.expires_at <= now):
            return None
        return entry.principal

    def put(self, presented: str, principal: Principal, expires_at: datetime | None, generation: int) -> None:
        """Remember a key just authenticated, unless a notice arrived since ``generation`` was taken."""
        if self._ttl <= 0 or not self.listening or generation != self._generation:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[apikeys.digest(presented)] = _Entry(principal, expires_at, time.monotonic() + self._ttl)

    def forget(self, notice: str) -> None:
        """Apply a notice: drop the key, or every key of the tenant, it names."""
        self._generation += 1
        kind, _, ident = notice.partition(":")
        field = {"key": "key_id", "tenant": "tenant_id"}.get(kind)
        if field is None:
            self._entries.clear()
            return
        self._entries = {digest: entry for digest, entry in self._entries.items()
                         if str(getattr(entry.principal, field)) != ident}

    def _drop_all(self) -> None:
        self.subscribed = False
        self._generation += 1
        self._entries.clear()

    def stop(self) -> None:
        """Make :meth:`listen` return (redis-py may swallow a cancellation while it reads, so it cannot rely on
        being cancelled)."""
        self._stopping.set()

    async def listen(self, pool: ConnectionPool, channel: str) -> None:
        """Apply the notices of ``channel`` until :meth:`stop`, subscribing again after a disconnection. The
        subscription has a connection of its own (configured as ``pool``'s, made in this event loop)."""
        redis = Redis(connection_pool=ConnectionPool(connection_class=pool.connection_class,
                                                     **pool.connection_kwargs))
        try:
            while not self._stopping.is_set():
                await self._follow(redis, channel)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), RESUBSCRIBE_SECONDS)
        finally:
            await redis.aclose(close_connection_pool=True)

    async def _follow(self, redis: Redis, channel: str) -> None:
        """One subscription, until it drops, falls silent or :meth:`stop`; the cache serves only while it lasts."""
        try:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                started = pinged = time.monotonic()
                while not self._stopping.is_set():
                    now = time.monotonic()
                    if now - max(started, self._heard_at) > HEARD_WITHIN_SECONDS:
                        log.warning("apikeys.cache_subscription_silent")
                        return
                    if now - pinged >= PING_SECONDS:
                        await pubsub.ping()
                        pinged = now
                    message = await pubsub.get_message(timeout=PING_SECONDS / 2)
                    if message is None:
                        continue
                    self._heard_at = time.monotonic()
                    if message["type"] == "subscribe":
                        self.subscribed = True
                    elif message["type"] == "message":
                        data = message["data"]
                        self.forget(data.decode() if isinstance(data, bytes) else str(data))
        except Exception as exc:  # whatever broke the subscription, the cache must not serve
            log.warning("apikeys.cache_unsubscribed", error_type=type(exc).__name__)
        finally:
            self._drop_all()
