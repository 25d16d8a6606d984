"""Declarative base with a constraint naming convention (stable names make migrations reviewable)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Enum, ForeignKey, MetaData, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every ORM model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}


def tenant_fk() -> ForeignKey:
    """The link of a tenant's row to its tenant (deleting the tenant deletes the row)."""
    return ForeignKey("tenants.id", ondelete="CASCADE")


class UUIDPrimaryKey:
    """A random UUID primary key."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class Timestamps:
    """Creation and last-update times, set by the database."""

    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


def value_enum(kind: type[enum.Enum], name: str, **options: Any) -> Enum:
    """The PostgreSQL enum type ``name`` of ``kind``, holding its members' values (``"open"``, not ``OPEN``)."""
    return Enum(kind, name=name, values_callable=lambda members: [str(member.value) for member in members], **options)
