"""The tenant: one installer company."""

from __future__ import annotations

import enum

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, Timestamps, UUIDPrimaryKey, value_enum


class TenantStatus(enum.StrEnum):
    """Whether a tenant's jobs run and its keys work."""

    ACTIVE = "active"
    SUSPENDED = "suspended"


class Tenant(UUIDPrimaryKey, Timestamps, Base):
    """An installer company using givfleet."""

    __tablename__ = "tenants"

    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    status: Mapped[TenantStatus] = mapped_column(
        value_enum(TenantStatus, "tenant_status"),
        default=TenantStatus.ACTIVE,
    )
    # Campaigns with more targets than this need an admin's approval (by another key) before they start.
    campaign_approval_threshold: Mapped[int] = mapped_column(Integer, default=500, server_default="500")
