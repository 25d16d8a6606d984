"""The notifications outbox: events inserted in the same transaction as the change that caused them.

Deliveries (issue 14) read unprocessed rows and mark them processed; nothing here delivers. ``idempotency_key``
is unique per tenant, so a change recorded twice (a resumed poll) cannot queue two notifications, and every
delivery can carry it as its idempotency id.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Enum, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, UUIDPrimaryKey
from service.db.models.monitoring import Severity


class NotificationEventType(enum.StrEnum):
    """What happened."""

    ALERT_RAISED = "alert.raised"
    ALERT_REOPENED = "alert.reopened"
    ALERT_ACKNOWLEDGED = "alert.acknowledged"
    ALERT_CLEARED = "alert.cleared"
    INCIDENT_OPENED = "incident.opened"
    INCIDENT_CLEARED = "incident.cleared"


class NotificationEvent(UUIDPrimaryKey, Base):
    """One thing to tell people about (see the module docstring).

    ``notify`` is false for events that are recorded but must not be sent (an alert inside a maintenance
    window). ``processed_at`` is set by the delivery side once it has routed the event.
    """

    __tablename__ = "notification_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_notification_events_unprocessed", "tenant_id", "created_at",
              postgresql_where=text("processed_at IS NULL")),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    type: Mapped[NotificationEventType] = mapped_column(
        Enum(NotificationEventType, name="notification_event_type",
             values_callable=lambda kind: [member.value for member in kind])
    )
    idempotency_key: Mapped[str] = mapped_column(String(200))
    severity: Mapped[Severity | None] = mapped_column(
        Enum(Severity, name="monitoring_severity", values_callable=lambda kind: [member.value for member in kind],
             create_type=False)
    )
    alert_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("monitoring_alerts.id"))
    incident_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("monitoring_incidents.id"))
    inverter_serial: Mapped[str | None] = mapped_column(String(64))
    site_upstream_id: Mapped[int | None] = mapped_column(BigInteger)
    summary: Mapped[str] = mapped_column(String(500))
    notify: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
