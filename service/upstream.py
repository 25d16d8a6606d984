"""The one way upstream: every GivEnergy call of the service starts at :class:`Upstream`.

Built once per process (``resources.upstream``), it owns what each caller used to do for itself:

- **credential choice**: a tenant's best API token (:func:`service.tenants.choice.pick_api_token`), or the one
  credential named by id (a credential check);
- **decryption** of the token, which never leaves this module except inside a client;
- **the shared budget and lane**: every client goes through the Redis rate limiter, in the lane the caller
  names. The budget is keyed by a keyed hash of the token (HMAC under the deployment's budget salt, a random
  secret stored once in PostgreSQL, :class:`~service.db.models.credential.BudgetSalt`), never by the credential row,
  so two credentials holding the same token (in two tenants, or twice in one) share one budget, as GivEnergy counts
  them. The salt is kept apart from Redis, so reading Redis does not allow testing guessed tokens or portal
  passwords against the budgets' names, and emptying Redis does not re-key them; it does not depend on the
  encryption keys, so a key rotation (processes on the old and the new key ring at once) keeps one budget per
  token;
- **the legacy portal client** (:meth:`Upstream.portal`), rate limited like the API client;
- **the route**: where requests go. Tests and the demo point it at the in-process simulator with
  :meth:`Upstream.routed` (or by setting :attr:`Upstream.route`).

The credential is read on a short session of its own which is released before the client is handed out, so no
database connection is held while GivEnergy answers (callers must not hold one either: read, release, call
upstream, then record in a new short transaction).

Example::

    async with resources.upstream.client(principal.tenant_id, Lane.INTERACTIVE) as client:
        data = await client.get_system_data(serial)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpx
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.core.errors import InvalidInputError, NotFoundError, UpstreamError
from service.core.tenancy import TenantId
from service.db.models.credential import BudgetSalt, CredentialKind, UpstreamCredential
from service.givenergy import (
    DEFAULT_CUSTOM_BUCKETS,
    NOTIFICATION_BUCKET,
    CredentialLimiter,
    GivEnergyClient,
    Lane,
    LegacyPortalClient,
    RateLimiter,
    RetryPolicy,
)
from service.settings import Settings
from service.tenants.choice import pick_api_token
from service.tenants.crypto import load_key_ring
from service.tenants.repository import CredentialRepository
from service.tenants.service import open_token

INTERACTIVE_LIMITER_WAIT = 30.0
"""Longest wait for the limiter in the interactive lane (a person is waiting; beyond it the answer is 503)."""


class NoCredentialError(UpstreamError):
    """The tenant has no usable upstream credential."""

    def __init__(self) -> None:
        super().__init__("the tenant has no usable GivEnergy API token (none is healthy or unchecked)",
                         code="UPSTREAM_NOT_CONFIGURED")


@dataclass(frozen=True)
class Route:
    """Where upstream requests go. The defaults (all ``None``) are the real GivEnergy cloud, or a
    credential's own base URL.

    Attributes:
        transport: An httpx transport (e.g. ``httpx.ASGITransport(app=simulator.app)``).
        base_url: API v1 base URL used instead of the credential's or the configured one.
        legacy_base_url: Legacy portal base URL used instead of the credential's or the configured one.
        retry: The client's retry policy (tests shorten it).
    """

    transport: httpx.AsyncBaseTransport | None = None
    base_url: str | None = None
    legacy_base_url: str | None = None
    retry: RetryPolicy | None = None


@dataclass(frozen=True)
class ChosenCredential:
    """The credential a client is built for (a snapshot; the secret is decrypted).

    Attributes:
        id: The credential row.
        kind: API token or legacy portal login.
        base_url: The credential's own base URL, if any.
        requests_per_minute: Its tier, if known.
        portal_username: The portal login's username.
        secret: The token or password.
    """

    id: uuid.UUID
    kind: CredentialKind
    base_url: str | None
    requests_per_minute: int | None
    portal_username: str | None
    secret: SecretStr

    def __repr__(self) -> str:
        return f"ChosenCredential(id={self.id}, kind={self.kind.value})"


def budget_key(salt: bytes, credential: ChosenCredential) -> str:
    """The limiter key of a credential's secret: an HMAC-SHA256 of it under the deployment's budget salt (stable
    across processes and key rotations, never reversible to the secret, never the secret itself).

    What is hashed is a JSON array of the kind and the secret's parts (a portal login: username and password),
    so no two different logins read as one: user ``a:b`` with password ``c`` is not user ``a`` with ``b:c``.
    """
    parts = [credential.kind.value, credential.secret.get_secret_value()]
    if credential.kind is CredentialKind.PORTAL_LOGIN:
        parts.insert(1, credential.portal_username or "")
    return "tok-" + hmac.new(salt, json.dumps(parts).encode(), hashlib.sha256).hexdigest()[:40]


async def load_budget_salt(session_factory: async_sessionmaker[AsyncSession]) -> bytes:
    """The deployment's budget salt, made by whichever process asks first (racing processes all read the one
    that was stored: the insert of a second does nothing)."""
    async with session_factory.begin() as session:
        await session.execute(insert(BudgetSalt).values(id=1, salt=secrets.token_bytes(32))
                              .on_conflict_do_nothing(index_elements=[BudgetSalt.id]))
        return (await session.execute(select(BudgetSalt.salt))).scalar_one()


class Upstream:
    """Rate-limited GivEnergy clients for a tenant (see the module docstring).

    Args:
        settings: Configuration (``givenergy`` group: base URLs, timeouts, default tier; ``redis.namespace``).
        redis: The Redis of the shared rate limiter.
        session_factory: Where credentials and the budget salt are read (on a short session of their own).
        route: Where requests go (default: the real cloud).
    """

    def __init__(self, settings: Settings, redis: Redis, session_factory: async_sessionmaker[AsyncSession],
                 route: Route | None = None) -> None:
        self.settings = settings
        self.route = route or Route()
        self._session_factory = session_factory
        self._limiter = RateLimiter(redis, namespace=settings.redis.namespace)
        self._budget_salt: bytes | None = None

    @contextmanager
    def routed(self, route: Route) -> Iterator[Upstream]:
        """Send requests along ``route`` until the block ends (tests point it at the simulator)."""
        previous, self.route = self.route, route
        try:
            yield self
        finally:
            self.route = previous

    async def choose(self, tenant_id: TenantId, credential_id: uuid.UUID | None = None, *,
                     session: AsyncSession | None = None) -> ChosenCredential:
        """The credential to call GivEnergy with, read and decrypted on a short session of its own.

        Args:
            tenant_id: The tenant.
            credential_id: This credential (any kind or health); ``None``: the tenant's best API token.
            session: Read on this session instead (a sync reads it in the transaction that opens its run).

        Raises:
            NotFoundError: ``credential_id`` is unknown or another tenant's (or was just deleted).
            NoCredentialError: The tenant has no API token that is healthy or not yet checked.
        """
        if session is None:
            async with self._session_factory() as own:
                return await self.choose(tenant_id, credential_id, session=own)
        repository = CredentialRepository(session, tenant_id)
        if credential_id is None:
            row = pick_api_token(await repository.list())
            if row is None:
                raise NoCredentialError()
        else:
            found = await repository.get(credential_id)
            if found is None:
                raise NotFoundError("no such credential")
            row = found
        return self._snapshot(row)

    def _snapshot(self, row: UpstreamCredential) -> ChosenCredential:
        return ChosenCredential(id=row.id, kind=row.kind, base_url=row.base_url,
                                requests_per_minute=row.requests_per_minute, portal_username=row.portal_username,
                                secret=open_token(load_key_ring(self.settings), row))

    async def budget_salt(self) -> bytes:
        """The deployment's budget salt, read from the database on first use and kept for the life of the
        process (it never changes once made)."""
        if self._budget_salt is None:
            self._budget_salt = await load_budget_salt(self._session_factory)
        return self._budget_salt

    async def budget(self, credential: ChosenCredential) -> CredentialLimiter:
        """The shared budget of the credential's secret (its tier, else the deployment's default)."""
        return self._limiter.credential(
            budget_key(await self.budget_salt(), credential),
            requests_per_minute=credential.requests_per_minute or self.settings.givenergy.default_requests_per_minute,
            window_seconds=self.settings.givenergy.rate_limit_window_seconds,
            custom_buckets={NOTIFICATION_BUCKET: replace(  # GivEnergy's limit, over the configured window
                DEFAULT_CUSTOM_BUCKETS[NOTIFICATION_BUCKET],
                window_seconds=self.settings.givenergy.notification_window_seconds)},
        )

    @asynccontextmanager
    async def client(self, tenant_id: TenantId, lane: Lane, *, credential_id: uuid.UUID | None = None,
                     max_limiter_wait: float | None = None) -> AsyncIterator[GivEnergyClient]:
        """A rate-limited API client of the tenant, closed when the block ends (arguments and errors as
        :meth:`open_client`)."""
        async with await self.open_client(tenant_id, lane, credential_id=credential_id,
                                          max_limiter_wait=max_limiter_wait) as client:
            yield client

    async def open_client(self, tenant_id: TenantId, lane: Lane, *, credential_id: uuid.UUID | None = None,
                          max_limiter_wait: float | None = None) -> GivEnergyClient:
        """A rate-limited API client of the tenant which the caller closes (``aclose``); prefer :meth:`client`.

        Args:
            tenant_id: The tenant.
            lane: The limiter lane (``INTERACTIVE`` when a person waits; it waits at most
                :data:`INTERACTIVE_LIMITER_WAIT` for the limiter unless ``max_limiter_wait`` says otherwise).
            credential_id: Use this API-token credential; ``None``: the tenant's best one.
            max_limiter_wait: Longest wait for the limiter, seconds.

        Raises:
            NotFoundError: ``credential_id`` is unknown or another tenant's.
            NoCredentialError: The tenant has no usable API token.
            InvalidInputError: ``credential_id`` is a portal login (use :meth:`portal`).
        """
        credential = await self.choose(tenant_id, credential_id)
        if credential.kind is not CredentialKind.API_TOKEN:
            raise InvalidInputError("this credential is a legacy portal login, not an API token")
        if max_limiter_wait is None and lane is Lane.INTERACTIVE:
            max_limiter_wait = INTERACTIVE_LIMITER_WAIT
        return api_client(credential.secret, self.settings, limiter=await self.budget(credential), lane=lane,
                          max_limiter_wait=max_limiter_wait, **self._options(credential.base_url, self.route.base_url))

    @asynccontextmanager
    async def portal(self, tenant_id: TenantId, credential_id: uuid.UUID, *,
                     lane: Lane = Lane.INTERACTIVE) -> AsyncIterator[LegacyPortalClient]:
        """A rate-limited legacy portal client for a portal-login credential, closed when the block ends.

        Raises:
            NotFoundError: ``credential_id`` is unknown or another tenant's.
            InvalidInputError: The credential is an API token (use :meth:`client`).
        """
        credential = await self.choose(tenant_id, credential_id)
        if credential.kind is not CredentialKind.PORTAL_LOGIN:
            raise InvalidInputError("this credential is an API token, not a legacy portal login")
        base_url = self.route.legacy_base_url or credential.base_url or self.settings.givenergy.legacy_base_url
        options: dict[str, Any] = {"transport": self.route.transport}
        if self.route.retry is not None:
            options["retry"] = self.route.retry
        async with LegacyPortalClient(credential.portal_username or "", credential.secret, base_url=base_url,
                                      timeout=self.settings.givenergy.timeout_seconds,
                                      limiter=await self.budget(credential), lane=lane, **options) as portal:
            yield portal

    async def sync_target(self, session: AsyncSession, tenant_id: TenantId) -> UpstreamTarget:
        """Where and as whom a sync of the tenant talks upstream: its best API token (read on ``session``) and
        that token's shared budget (a :data:`service.mirror.runner.UpstreamResolver`).

        Raises:
            NoCredentialError: The tenant has no usable API token.
        """
        credential = await self.choose(tenant_id, session=session)
        return UpstreamTarget(token=credential.secret,
                          base_url=self.route.base_url or credential.base_url or self.settings.givenergy.base_url,
                          credential_id=credential.id, limiter=await self.budget(credential),
                          transport=self.route.transport, timeout=self.settings.givenergy.timeout_seconds)

    def _options(self, *base_urls: str | None) -> dict[str, Any]:
        options: dict[str, Any] = {"transport": self.route.transport}
        chosen = next((url for url in reversed(base_urls) if url), None)
        if chosen:
            options["base_url"] = chosen
        if self.route.retry is not None:
            options["retry"] = self.route.retry
        return options


@dataclass(frozen=True)
class UpstreamTarget:
    """Where and as whom a sync talks upstream (a long-lived, counted client is built from it by
    :func:`api_client`).

    Attributes:
        token: The credential's token.
        base_url: API v1 base URL.
        credential_id: The credential (recorded on the sync run; ``None`` in tools and tests).
        limiter: The token's shared budget (``None``: unlimited, e.g. a benchmark).
        transport: An httpx transport (the in-process simulator in tests).
        timeout: Timeout of one request, seconds.
    """

    token: SecretStr
    base_url: str
    credential_id: uuid.UUID | None = None
    limiter: CredentialLimiter | None = None
    transport: httpx.AsyncBaseTransport | None = None
    timeout: float = 30.0


def api_client(token: SecretStr, settings: Settings | None = None, **options: Any) -> GivEnergyClient:
    """The one constructor of :class:`GivEnergyClient` outside tests (``options`` as the client takes them).

    Use :meth:`Upstream.client`; this is for the sync, which brings its own counted HTTP client.
    """
    if settings is None:
        return GivEnergyClient(token, **options)
    return GivEnergyClient.from_settings(token, settings.givenergy, **options)


__all__ = [
    "INTERACTIVE_LIMITER_WAIT",
    "ChosenCredential",
    "NoCredentialError",
    "Route",
    "Upstream",
    "UpstreamTarget",
    "api_client",
    "budget_key",
]
