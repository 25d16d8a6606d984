"""What the tenants domain shows and accepts. No view carries a secret: tokens are write-only and a key's text
appears only in :class:`CreatedApiKeyView`, once."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints

from service.core.roles import Role
from service.core.text import NO_CONTROL
from service.db.models.credential import CredentialHealth, CredentialKind


class _View(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class TenantView(_View):
    """A tenant."""

    id: uuid.UUID
    slug: str
    name: str
    timezone: str
    status: str


class CredentialView(_View):
    """An upstream credential, without its secret."""

    id: uuid.UUID
    label: str
    kind: CredentialKind
    portal_username: str | None
    account_type: str | None
    scopes: list[str]
    requests_per_minute: int | None = Field(description="Tier; null means the configured default.")
    health: CredentialHealth
    health_message: str | None
    last_checked_at: datetime | None
    upstream_account_id: str | None
    upstream_username: str | None
    key_id: str = Field(description="Id of the encryption key sealing the secret (not the key itself).")
    created_at: datetime


class CredentialInput(BaseModel):
    """A new credential. The token is write-only. Unknown fields are refused (a misspelt field must not be
    silently ignored on a security-relevant write)."""

    model_config = ConfigDict(extra="forbid")

    token: SecretStr = Field(description="GivEnergy API token (or the legacy portal password).")
    label: Annotated[str, StringConstraints(max_length=100), NO_CONTROL] | None = None
    kind: CredentialKind = CredentialKind.API_TOKEN
    portal_username: Annotated[str, StringConstraints(max_length=200), NO_CONTROL] | None = None
    requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    check: bool = Field(default=True, description="Check the credential upstream right away.")


class ApiKeyView(_View):
    """An API key, without its secret."""

    id: uuid.UUID
    name: str
    prefix: str
    role: Role
    expires_at: datetime | None
    restricted_account_id: str | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class ApiKeyInput(BaseModel):
    """A new API key. Unknown fields are refused: a misspelt ``restricted_account_id`` must never yield a
    whole-tenant key."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=100), NO_CONTROL]
    role: Role
    expires_at: datetime | None = None
    restricted_account_id: Annotated[str, StringConstraints(max_length=64), NO_CONTROL] | None = None


class CreatedApiKeyView(BaseModel):
    """A new API key and its full text: shown this once, never again."""

    key: ApiKeyView
    secret: str = Field(description="The API key to send as `Authorization: Bearer <secret>`; store it now.")


class AuditEventView(_View):
    """One audit event."""

    id: uuid.UUID
    occurred_at: datetime
    actor: str
    actor_key_id: uuid.UUID | None
    action: str
    target_type: str
    target_id: str | None
    client_address: str | None
    request_id: str | None
    details: dict[str, Any]


class PrincipalView(BaseModel):
    """Who the caller is."""

    tenant_id: uuid.UUID
    role: Role
    key_id: uuid.UUID | None
    restricted_account_id: str | None
