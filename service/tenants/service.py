"""Tenants, upstream credentials, API keys, authentication and the audit log.

Services take a session and never commit: the edge that owns the transaction (REST request, CLI command,
job) does. Every write records an audit event in the same transaction, so the log and the change commit or
roll back together.
"""

from __future__ import annotations

import re
import uuid
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from service.core import limits
from service.core.clock import utcnow
from service.core.errors import ConflictError, InvalidInputError, NotFoundError, found, not_in_mirror
from service.core.principal import Principal
from service.core.roles import Role
from service.core.tenancy import TenantId, tenant_id_from
from service.core.text import plain_field
from service.db.models.api_key import ApiKey
from service.db.models.audit import AuditEvent
from service.db.models.credential import CredentialHealth, CredentialKind, UpstreamCredential
from service.db.models.tenant import Tenant, TenantStatus
from service.db.uow import defer_notice
from service.notifications.outbox import note_unhealthy
from service.policy import Action, authorize
from service.settings import DEFAULT_REQUESTS_PER_MINUTE
from service.tenants import apikeys
from service.tenants.crypto import KeyRing, Sealed
from service.tenants.keycache import REVOCATIONS, ApiKeyCache, key_notice, tenant_notice
from service.tenants.repository import (
    ApiKeyLookup,
    ApiKeyRepository,
    AuditRepository,
    CredentialRepository,
    CredentialRotationRepository,
    TenantRepository,
)
from service.tenants.upstream import AccountProbe

log = structlog.get_logger(__name__)


SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# A key's last-used time is written at most this often (not on every request).
LAST_USED_RESOLUTION = timedelta(seconds=60)


class AuditService:
    """The audit log: call :meth:`record` for every write action, in the transaction of the write."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record(
        self,
        principal: Principal,
        action: str,
        *,
        target_type: str,
        target_id: str | uuid.UUID | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """Record that ``principal`` did ``action`` to a target.

        Args:
            principal: Who acted (its key, tenant, client address and request id are recorded).
            action: ``"domain.verb"``, e.g. ``"apikey.create"``, ``"campaign.start"``.
            target_type: What kind of thing was acted on, e.g. ``"api_key"``, ``"inverter"``.
            target_id: Which one (an id or serial).
            details: Extra facts (never secrets).

        Returns:
            The staged event.
        """
        event = AuditEvent(
            tenant_id=principal.tenant_id,
            actor_key_id=principal.key_id,
            actor=principal.actor,
            action=action,
            target_type=target_type,
            target_id=str(target_id) if target_id is not None else None,
            client_address=principal.client_address,
            request_id=principal.request_id,
            details=details or {},
            occurred_at=utcnow(),
        )
        AuditRepository(self._session, principal.tenant_id).add(event)
        await self._session.flush()
        return event

    async def list(self, principal: Principal, *, limit: int = 100, action: str | None = None
                   ) -> Sequence[AuditEvent]:
        """The principal's tenant's newest events (admin, whole-tenant keys only)."""
        authorize(principal, Action.AUDIT_READ)
        return await AuditRepository(self._session, principal.tenant_id).list(limit=limit, action=action)


class TenantService:
    """Creating and finding tenants (local administration: the CLI and the demo set-up)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._tenants = TenantRepository(session)

    async def create(self, slug: str, *, name: str | None = None, timezone: str = "Europe/London",
                     actor: str = "cli") -> Tenant:
        """Create a tenant.

        Raises:
            InvalidInputError: The slug or timezone is malformed, or the name holds a control character (it is
                shown in tables and pages).
            ConflictError: The slug is taken.
        """
        if name is not None:
            plain_field(name, "name", max_length=200)
        if not SLUG_PATTERN.fullmatch(slug):
            raise InvalidInputError("a slug is 1-63 lower-case letters, digits and hyphens, not starting or ending "
                                    "with a hyphen")
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise InvalidInputError(f"unknown timezone {timezone!r}") from None
        if await self._tenants.get_by_slug(slug) is not None:
            raise ConflictError(f"a tenant with slug {slug!r} already exists")
        tenant = Tenant(id=uuid.uuid4(), slug=slug, name=name or slug, timezone=timezone, status=TenantStatus.ACTIVE)
        self._tenants.add(tenant)
        await self._session.flush()
        await AuditService(self._session).record(
            Principal.cli(tenant_id_from(tenant.id), actor=actor), "tenant.create", target_type="tenant",
            target_id=tenant.id, details={"slug": slug},
        )
        return tenant

    async def list(self) -> Sequence[Tenant]:
        """Every tenant."""
        return await self._tenants.list()

    async def set_status(self, slug: str, status: TenantStatus, *, actor: str = "cli") -> Tenant:
        """Suspend a tenant (its keys stop working) or make it active again.

        Raises:
            NotFoundError: No such tenant.
        """
        tenant = await self.get_by_slug(slug)
        if status is not TenantStatus.ACTIVE:
            defer_notice(self._session, REVOCATIONS, tenant_notice(tenant.id))
        if tenant.status is not status:
            tenant.status = status
            await self._session.flush()
            await AuditService(self._session).record(
                Principal.cli(tenant_id_from(tenant.id), actor=actor), f"tenant.{status.value}", target_type="tenant",
                target_id=tenant.id, details={"slug": slug},
            )
        return tenant

    async def get_by_slug(self, slug: str) -> Tenant:
        """The tenant with ``slug``.

        Raises:
            NotFoundError: No such tenant.
        """
        return found(await self._tenants.get_by_slug(slug), f"no tenant with slug {slug!r}")

    async def get(self, tenant_id: TenantId) -> Tenant:
        """The tenant with this id.

        Raises:
            NotFoundError: No such tenant.
        """
        return found(await self._tenants.get(tenant_id), "no such tenant")


def _associated_data(credential: UpstreamCredential) -> bytes:
    return f"upstream_credentials:{credential.tenant_id}:{credential.id}".encode()


def _valid_secret(secret: str, kind: CredentialKind) -> str:
    """The secret without surrounding blanks.

    Raises:
        InvalidInputError: It is empty, or an API token that is not printable ASCII.
    """
    secret = secret.strip()
    if not secret:
        raise InvalidInputError("the token is empty")
    if kind is CredentialKind.API_TOKEN and not (secret.isascii() and secret.isprintable()):
        raise InvalidInputError("an API token is printable ASCII (it is sent in an HTTP header)")
    return secret


def open_token(key_ring: KeyRing, credential: UpstreamCredential) -> SecretStr:
    """Decrypt a credential's secret (for building an upstream client; never log or return it).

    Raises:
        KeyRingError: The credential's key id is not configured, or the ciphertext was tampered with.
    """
    sealed = Sealed(credential.key_id, credential.secret_ciphertext)
    return SecretStr(key_ring.open(sealed, _associated_data(credential)))


@dataclass(frozen=True)
class CheckOutcome:
    """A credential after a check, and what the check found."""

    credential: UpstreamCredential
    probe: AccountProbe


class CredentialService:
    """A tenant's upstream credentials: add, list, check, remove. Secrets are sealed before they are staged."""

    def __init__(self, session: AsyncSession, principal: Principal, key_ring: KeyRing, *,
                 default_requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE) -> None:
        self._session = session
        self._default_requests_per_minute = default_requests_per_minute
        self._principal = principal
        self._key_ring = key_ring
        self._credentials = CredentialRepository(session, principal.tenant_id)
        self._audit = AuditService(session)

    async def add(
        self,
        secret: str,
        *,
        label: str | None = None,
        kind: CredentialKind = CredentialKind.API_TOKEN,
        portal_username: str | None = None,
        requests_per_minute: int | None = None,
        base_url: str | None = None,
    ) -> UpstreamCredential:
        """Store a new credential, encrypted (its health stays ``unknown`` until checked).

        Raises:
            PermissionDeniedError: The principal is not an admin.
            InvalidInputError: The secret is empty, an API token is not printable ASCII, a portal login lacks
                its username, or the base URL is not an http(s) URL.
        """
        authorize(self._principal, Action.CREDENTIAL_ADD)
        secret = _valid_secret(secret, kind)
        if kind is CredentialKind.PORTAL_LOGIN and not portal_username:
            raise InvalidInputError("a legacy portal login needs its username")
        if requests_per_minute is not None and requests_per_minute < 1:
            raise InvalidInputError("requests per minute must be positive")
        if base_url is not None and not _is_http_url(base_url):
            raise InvalidInputError(f"the base URL {base_url!r} is not an absolute http:// or https:// URL")
        credential = UpstreamCredential(
            id=uuid.uuid4(),
            tenant_id=self._principal.tenant_id,
            label=label or (f"portal {portal_username}" if kind is CredentialKind.PORTAL_LOGIN else "api token"),
            kind=kind,
            portal_username=portal_username,
            requests_per_minute=requests_per_minute,
            health=CredentialHealth.UNKNOWN,
            scopes=[],
            base_url=base_url,
        )
        self._seal(credential, secret)
        self._credentials.add(credential)
        await self._session.flush()
        await self._audit.record(self._principal, "credential.add", target_type="upstream_credential",
                                 target_id=credential.id, details={"label": credential.label, "kind": kind.value})
        return credential

    async def replace_secret(self, credential_id: uuid.UUID, secret: str) -> UpstreamCredential:
        """Store a new secret in a credential, encrypted; its health is ``unknown`` again until checked.

        Raises:
            PermissionDeniedError: The principal is not an admin.
            NotFoundError: Unknown id, or another tenant's.
            InvalidInputError: The secret is empty, or an API token is not printable ASCII.
        """
        authorize(self._principal, Action.CREDENTIAL_ADD)
        credential = await self._get(credential_id, for_update=True)
        self._seal(credential, _valid_secret(secret, credential.kind))
        credential.health, credential.health_message = CredentialHealth.UNKNOWN, None
        await self._session.flush()
        await self._audit.record(self._principal, "credential.replace_secret", target_type="upstream_credential",
                                 target_id=credential.id, details={"label": credential.label})
        return credential

    def _seal(self, credential: UpstreamCredential, secret: str) -> None:
        sealed = self._key_ring.seal(secret, _associated_data(credential))
        credential.secret_ciphertext, credential.key_id = sealed.blob, sealed.key_id

    async def list(self) -> Sequence[UpstreamCredential]:
        """The tenant's credentials (viewer and above, whole-tenant keys; secrets are never part of the rows)."""
        authorize(self._principal, Action.CREDENTIAL_READ)
        return await self._credentials.list()

    async def get(self, credential_id: uuid.UUID) -> UpstreamCredential:
        """One credential of the tenant.

        Raises:
            NotFoundError: Unknown id, or another tenant's.
        """
        authorize(self._principal, Action.CREDENTIAL_READ)
        return await self._get(credential_id)

    async def _get(self, credential_id: uuid.UUID, *, for_update: bool = False) -> UpstreamCredential:
        return found(await self._credentials.get(credential_id, for_update=for_update), "no such credential")

    async def remove(self, credential_id: uuid.UUID) -> None:
        """Delete a credential (admin)."""
        authorize(self._principal, Action.CREDENTIAL_REMOVE)
        credential = await self._get(credential_id, for_update=True)
        await self._credentials.delete(credential)
        await self._audit.record(self._principal, "credential.remove", target_type="upstream_credential",
                                 target_id=credential_id)

    async def record_check(self, credential_id: uuid.UUID, probe: AccountProbe) -> CheckOutcome:
        """Record what a check upstream found (health, account, account type, scopes, tier), audited.

        The probe is made before, outside any transaction (:func:`service.tenants.checks.check_credential`);
        the row is locked here, so a check racing a delete finds it gone (404) instead of failing.

        Raises:
            PermissionDeniedError: The principal may not check credentials.
            NotFoundError: Unknown id, another tenant's, or deleted while the check was upstream.
        """
        authorize(self._principal, Action.CREDENTIAL_CHECK)
        credential = await self._get(credential_id, for_update=True)
        await note_unhealthy(self._session, credential, probe.health)
        self._apply(credential, probe)
        await self._session.flush()
        await self._audit.record(self._principal, "credential.check", target_type="upstream_credential",
                                 target_id=credential.id, details={"health": probe.health.value})
        log.info("credential.checked", tenant_id=str(credential.tenant_id), credential_id=str(credential.id),
                 health=probe.health.value)
        return CheckOutcome(credential, probe)

    def _apply(self, credential: UpstreamCredential, probe: AccountProbe) -> None:
        credential.health = probe.health
        credential.health_message = probe.message[:500]
        credential.last_checked_at = utcnow()
        if probe.health is CredentialHealth.OK:
            credential.upstream_account_id = probe.account_id
            credential.upstream_username = probe.username or credential.portal_username
            credential.account_type = probe.account_type
            credential.scopes = list(probe.scopes)
        elif probe.health is not CredentialHealth.UNKNOWN:
            credential.scopes = list(probe.scopes)
        # The limiter reports the configured tier unless GivEnergy announced another in X-RateLimit-Limit.
        effective = credential.requests_per_minute or self._default_requests_per_minute
        if probe.requests_per_minute is not None and probe.requests_per_minute != effective:
            credential.requests_per_minute = probe.requests_per_minute


async def rotate_encryption(session: AsyncSession, key_ring: KeyRing) -> int:
    """Re-seal every credential not under the active key with it; return how many were re-sealed.

    Old keys must still be configured until this has committed; afterwards they can be removed.
    """
    rows = await CredentialRotationRepository(session).not_sealed_with(key_ring.active_key_id)
    for credential in rows:
        sealed = key_ring.reseal(Sealed(credential.key_id, credential.secret_ciphertext), _associated_data(credential))
        credential.secret_ciphertext, credential.key_id = sealed.blob, sealed.key_id
    await session.flush()
    log.info("encryption.rotated", credentials=len(rows), active_key_id=key_ring.active_key_id)
    return len(rows)


@dataclass(frozen=True)
class CreatedKey:
    """A new API key: its row and its full text (shown once, never stored)."""

    key: ApiKey
    text: str = field(repr=False)


class ApiKeyService:
    """A tenant's API keys (admin)."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self._session = session
        self._principal = principal
        self._keys = ApiKeyRepository(session, principal.tenant_id)
        self._audit = AuditService(session)

    async def create(self, *, name: str, role: Role, expires_at: datetime | None = None,
                     restricted_account_id: str | None = None, demo_key: bool = False) -> CreatedKey:
        """Create a key; its full text is returned once and only its digest is stored.

        ``demo_key`` marks the key ``givfleet up`` issues to the demo tenant (:mod:`service.tenants.demo`); no
        adapter passes it.

        Raises:
            PermissionDeniedError: The principal is not an admin.
            InvalidInputError: The name holds a control character, the expiry is in the past or not
                timezone-aware, or the tenant has no account ``restricted_account_id`` (in its mirror).
        """
        authorize(self._principal, Action.APIKEY_CREATE)
        plain_field(name, "name", max_length=100)  # REST's input refuses it too; GraphQL and the CLI rely on this
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise InvalidInputError("the expiry must carry a timezone", field="expires_at")
            if limits.moment(expires_at, parameter="expires_at") <= utcnow():
                raise InvalidInputError("the expiry is in the past", field="expires_at")
        restriction = None
        if restricted_account_id is not None:  # "" is an error, never a whole-tenant key
            restriction = str(await self._require_account(restricted_account_id))
        new = apikeys.generate()
        key = ApiKey(
            id=uuid.uuid4(),
            tenant_id=self._principal.tenant_id,
            name=name.strip() or "unnamed",
            prefix=new.prefix,
            secret_hash=new.digest,
            role=role,
            expires_at=expires_at,
            restricted_account_id=restriction,
            created_by_key_id=self._principal.key_id,
            demo_key=demo_key,
        )
        self._keys.add(key)
        await self._session.flush()
        await self._audit.record(self._principal, "apikey.create", target_type="api_key", target_id=key.id,
                                 details={"prefix": key.prefix, "role": role.value, "name": key.name})
        return CreatedKey(key, new.text)

    async def _require_account(self, restricted_account_id: str) -> int:
        """The account id of a restriction; refuse an account the tenant does not have: such a key would see
        nothing, and a typo must not pass unnoticed."""
        account_id = limits.upstream_id(restricted_account_id, parameter="restricted_account_id")
        if not await self._keys.restriction_exists(account_id):
            raise not_in_mirror("account", account_id)
        return account_id

    async def list(self, *, include_revoked: bool = True) -> Sequence[ApiKey]:
        """The tenant's keys (admin)."""
        authorize(self._principal, Action.APIKEY_READ)
        return await self._keys.list(include_revoked=include_revoked)

    async def get(self, key_id: uuid.UUID) -> ApiKey:
        """One of the tenant's keys.

        Raises:
            NotFoundError: Unknown id, or another tenant's.
        """
        authorize(self._principal, Action.APIKEY_READ)
        return await self._get(key_id)

    async def _get(self, key_id: uuid.UUID) -> ApiKey:
        return found(await self._keys.get(key_id), "no such API key")

    async def find(self, reference: str) -> ApiKey:
        """A key by its id, its prefix (what ``apikey list`` shows) or its full text.

        Raises:
            NotFoundError: No such key in this tenant.
        """
        try:
            return await self.get(uuid.UUID(reference))
        except ValueError:
            prefix = apikeys.prefix_of(reference)
            key = await self._keys.get_by_prefix(prefix or reference)
        if key is None or (prefix is not None and not apikeys.matches(reference, key.secret_hash)):
            raise NotFoundError("no such API key")
        return key

    async def revoke(self, key_id: uuid.UUID) -> ApiKey:
        """Revoke a key (idempotent): it stops working at once.

        Raises:
            PermissionDeniedError: The principal may not revoke keys.
            NotFoundError: Unknown id, or another tenant's.
        """
        authorize(self._principal, Action.APIKEY_REVOKE)
        key = await self._get(key_id)
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            await self._session.flush()
            await self._audit.record(self._principal, "apikey.revoke", target_type="api_key", target_id=key.id,
                                     details={"prefix": key.prefix})
        defer_notice(self._session, REVOCATIONS, key_notice(key.id))  # again on a retry: the last may be lost
        return key


class AuthenticationError(Exception):
    """A presented key is not valid; ``reason`` says why (safe to show).

    ``guess`` is true when the key is unknown or malformed (what a brute-force attempt looks like); a key that
    exists but is revoked, expired or of a suspended tenant is not a guess.
    """

    def __init__(self, reason: str, *, guess: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.guess = guess


class AuthenticationService:
    """Turns a presented API key into a :class:`Principal` (the only place one is minted from a key).

    With a ``cache``, a key authenticated moments ago is answered from it (no statement at all); see
    :mod:`service.tenants.keycache`.
    """

    def __init__(self, session: AsyncSession, cache: ApiKeyCache | None = None) -> None:
        self._session = session
        self._lookup = ApiKeyLookup(session)
        self._cache = cache

    @staticmethod
    def cached(cache: ApiKeyCache | None, presented: str, *, client_address: str | None = None,
               request_id: str | None = None) -> Principal | None:
        """The principal of ``presented`` if ``cache`` holds it (no session needed), else ``None``: then
        :meth:`authenticate` looks it up."""
        known = cache.get(presented, utcnow()) if cache is not None else None
        return None if known is None else replace(known, client_address=client_address, request_id=request_id)

    async def authenticate(self, presented: str, *, client_address: str | None = None,
                           request_id: str | None = None) -> Principal:
        """Check ``presented`` and return its principal; records the key's use.

        Raises:
            AuthenticationError: Unknown, malformed, expired or revoked key, or a suspended tenant.
        """
        now = utcnow()
        known = self.cached(self._cache, presented, client_address=client_address, request_id=request_id)
        if known is not None:
            return known
        generation = self._cache.generation if self._cache is not None else 0
        prefix = apikeys.prefix_of(presented)
        found = await self._lookup.by_prefix(prefix) if prefix else None
        if found is None or not apikeys.matches(presented, found[0].secret_hash):
            raise AuthenticationError("the API key is not valid")
        key, tenant_status = found
        if key.revoked_at is not None:
            raise AuthenticationError("the API key has been revoked", guess=False)
        if key.expires_at is not None and key.expires_at <= now:
            raise AuthenticationError("the API key has expired", guess=False)
        if tenant_status is not TenantStatus.ACTIVE:
            raise AuthenticationError("the tenant of this API key is suspended", guess=False)
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            await self._lookup.touch(key.id, now)
        principal = Principal(
            tenant_id=tenant_id_from(key.tenant_id),
            role=key.role,
            key_id=key.id,
            actor=f"apikey:{key.prefix}",
            restricted_account_id=key.restricted_account_id,
            client_address=client_address,
            request_id=request_id,
        )
        if self._cache is not None:
            self._cache.put(presented, principal, key.expires_at, generation)
        return principal


def _is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a port that is no number or out of range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
