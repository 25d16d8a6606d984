"""The audit log: who did what, to what, when and from where."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, UUIDPrimaryKey, tenant_fk


class AuditEvent(UUIDPrimaryKey, Base):
    """One write action. Rows are only ever inserted."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_tenant_id_occurred_at", "tenant_id", "occurred_at"),)

    tenant_id: Mapped[uuid.UUID | None] = mapped_column(tenant_fk())
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # The API key that acted (None for the CLI and system jobs, named by ``actor``).
    actor_key_id: Mapped[uuid.UUID | None]
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str | None] = mapped_column(String(100))
    client_address: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
