"""A short-lived, in-process cache of authenticated API keys, told of revocations over Redis pub/sub.

A request whose key was authenticated within ``security.api_key_cache_seconds`` is served without reading the
database. Revoking a key (or suspending a tenant) publishes a notice on the deployment's
:data:`REVOCATIONS` channel once its transaction has committed (:func:`service.db.uow.defer_notice`); every
process forgets the key at once (the one that committed it before its next request; the others as soon as the
notice arrives), so a revoked key stops working within milliseconds, not the cache's lifetime.

The notices arrive through the process's one Redis subscription (:class:`~service.subscription.RedisSubscription`,
shared with the live change feed), of which the cache is the :data:`REVOCATIONS` channel's listener.
Safety: the cache serves only while that channel is subscribed (a notice missed while disconnected could leave
a revoked key cached); it is emptied whenever the subscription is lost. A connection can also die silently (no
reset; a proxy or network that swallows packets), so the subscription pings Redis, and the cache serves only
while Redis was heard (a pong or a message) within :data:`~service.subscription.HEARD_WITHIN_SECONDS`; after a
longer silence the subscription is lost (the cache emptied) and made again.
A lookup that started before a notice arrived is not cached (:attr:`ApiKeyCache.generation`).
Expiry is checked on every hit.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from service.core.principal import Principal
from service.subscription import RedisSubscription
from service.tenants import apikeys

REVOCATIONS = "api-key-revocations"
"""The pub/sub channel of revocation notices (namespaced like every Redis name of the deployment)."""
MAX_ENTRIES = 10_000
"""Keys cached at most; when full, the cache starts again empty (a deployment has far fewer active keys)."""


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
    """Principals of recently authenticated keys, by the digest of the presented key: the :data:`REVOCATIONS`
    channel's listener on ``subscription`` (the process's, which tells whether Redis was heard recently)."""

    def __init__(self, ttl_seconds: float, subscription: RedisSubscription) -> None:
        self._ttl = ttl_seconds
        self._subscription = subscription
        self._entries: dict[bytes, _Entry] = {}
        self._generation = 0
        self.subscribed = False

    @property
    def generation(self) -> int:
        """Changes whenever a notice arrives or the subscription is lost or made again: take it before a lookup,
        give it to :meth:`put`."""
        return self._generation

    @property
    def listening(self) -> bool:
        """Whether notices are being heard: subscribed, and Redis heard from recently."""
        return self.subscribed and self._subscription.heard_recently

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

    def live(self) -> None:
        """The channel is subscribed: the cache may serve (while Redis is heard). A lookup that started before
        (its notice may have been published while nobody listened) is not cached."""
        self._generation += 1
        self.subscribed = True

    def receive(self, notice: str) -> None:
        """Apply a notice: drop the key, or every key of the tenant, it names."""
        self._generation += 1
        kind, _, ident = notice.partition(":")
        field = {"key": "key_id", "tenant": "tenant_id"}.get(kind)
        if field is None:
            self._entries.clear()
            return
        self._entries = {digest: entry for digest, entry in self._entries.items()
                         if str(getattr(entry.principal, field)) != ident}

    def lost(self) -> None:
        """The subscription is lost (notices may be missed from now on): serve nothing, forget everything."""
        self.subscribed = False
        self._generation += 1
        self._entries.clear()
