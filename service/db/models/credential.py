"""Upstream credentials: how givfleet talks to GivEnergy on a tenant's behalf."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, LargeBinary, SmallInteger, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, Timestamps, UUIDPrimaryKey, tenant_fk, value_enum


class CredentialKind(enum.StrEnum):
    """What the secret is: a Cloud API v1 token, or a legacy portal password (with ``portal_username``)."""

    API_TOKEN = "api_token"  # noqa: S105 - a kind name, not a secret
    PORTAL_LOGIN = "portal_login"


class CredentialHealth(enum.StrEnum):
    """The credential's state as last seen upstream (401/402/403 are states to surface, not transient errors)."""

    UNKNOWN = "unknown"
    OK = "ok"
    UNAUTHORISED = "unauthorised"
    NO_SUBSCRIPTION = "no_subscription"
    FORBIDDEN = "forbidden"



class UpstreamCredential(UUIDPrimaryKey, Timestamps, Base):
    """A tenant's GivEnergy credential. The secret is stored only as AES-GCM ciphertext (see ``key_id``)."""

    __tablename__ = "upstream_credentials"

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk(), index=True)
    label: Mapped[str] = mapped_column(String(100))
    kind: Mapped[CredentialKind] = mapped_column(
        value_enum(CredentialKind, "credential_kind"), default=CredentialKind.API_TOKEN
    )
    portal_username: Mapped[str | None] = mapped_column(String(200))
    # nonce || ciphertext || tag, encrypted with the key named by key_id; the tenant and credential ids are
    # bound as associated data, so a ciphertext copied onto another row does not decrypt.
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64))
    account_type: Mapped[str | None] = mapped_column(String(32))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)
    requests_per_minute: Mapped[int | None] = mapped_column(Integer)
    health: Mapped[CredentialHealth] = mapped_column(
        value_enum(CredentialHealth, "credential_health"),
        default=CredentialHealth.UNKNOWN,
    )
    health_message: Mapped[str | None] = mapped_column(String(500))
    last_checked_at: Mapped[datetime | None]
    upstream_account_id: Mapped[str | None] = mapped_column(String(64))
    upstream_username: Mapped[str | None] = mapped_column(String(200))
    # Where this credential's API lives when not the configured GivEnergy Cloud (the demo's simulator).
    base_url: Mapped[str | None] = mapped_column(String(300))

    def __repr__(self) -> str:
        return f"<UpstreamCredential id={self.id} tenant_id={self.tenant_id} label={self.label!r} health={self.health}>"


class BudgetSalt(Base):
    """The deployment's budget salt: one row, made by the first process that needs it
    (:func:`service.upstream.load_budget_salt`).

    It keys the HMAC that names each token's rate budget in Redis. It lives here, not beside the budgets, so
    whoever can read Redis cannot test guessed tokens or portal passwords against the key names, and emptying
    Redis does not re-key the budgets (a long-running sync and a new client keep one budget per token).
    """

    __tablename__ = "budget_salt"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=1)
    salt: Mapped[bytes] = mapped_column(LargeBinary)
