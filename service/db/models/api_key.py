"""givfleet API keys for people and integrations."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, LargeBinary, String, false
from sqlalchemy.orm import Mapped, mapped_column

from service.core.roles import Role
from service.db.base import Base, Timestamps, UUIDPrimaryKey, tenant_fk, value_enum


class ApiKey(UUIDPrimaryKey, Timestamps, Base):
    """An API key. Only its prefix (for lookup) and a SHA-256 digest of the whole key are stored."""

    __tablename__ = "api_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk(), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    role: Mapped[Role] = mapped_column(
        value_enum(Role, "api_key_role")
    )
    expires_at: Mapped[datetime | None]
    # A sub-contractor key sees only this upstream account's subtree (resolved by the mirror's hierarchy).
    restricted_account_id: Mapped[str | None] = mapped_column(String(64))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    created_by_key_id: Mapped[uuid.UUID | None]
    # The admin key `givfleet up` issued to the demo tenant (and showed once). Only `up` sets it: a key someone
    # names like it is not taken for it.
    demo_key: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    def __repr__(self) -> str:
        return f"<ApiKey id={self.id} tenant_id={self.tenant_id} prefix={self.prefix!r} role={self.role}>"
