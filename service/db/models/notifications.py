"""Notifications: the outbox of events, the channels they go to, and every delivery and attempt.

``notification_events`` is the outbox: a row is inserted in the same transaction as the change that caused it
(alerts, incidents, campaigns, syncs, credentials). ``idempotency_key`` is unique per tenant, so a change recorded
twice (a resumed poll) cannot queue two notifications. The relay routes each event once (``processed_at``) into
``notification_deliveries`` (one per event and channel); deliveries are packed into ``notification_messages`` (what
goes on the wire once: one event for a webhook, a digest for GivEnergy and e-mail), and every try of a message is a
``notification_attempts`` row. A message's id is its idempotency id (the webhook's ``webhook-id``, the e-mail's
``Message-ID``), the same on every retry.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, time

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Time,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, UUIDPrimaryKey, tenant_fk, value_enum
from service.db.models.monitoring import Severity


class NotificationEventType(enum.StrEnum):
    """What happened."""

    ALERT_RAISED = "alert.raised"
    ALERT_REOPENED = "alert.reopened"
    ALERT_ACKNOWLEDGED = "alert.acknowledged"
    ALERT_CLEARED = "alert.cleared"
    INCIDENT_OPENED = "incident.opened"
    INCIDENT_CLEARED = "incident.cleared"
    CAMPAIGN_FINISHED = "campaign.finished"
    CAMPAIGN_ABORTED = "campaign.aborted"
    CAMPAIGN_AWAITING_APPROVAL = "campaign.awaiting_approval"
    SYNC_FAILED = "sync.failed"
    CREDENTIAL_UNHEALTHY = "credential.unhealthy"
    TEST = "notification.test"


class NotificationEvent(UUIDPrimaryKey, Base):
    """One thing to tell people about (see the module docstring).

    ``notify`` is false for events that are recorded but must not be sent (an alert inside a maintenance
    window). ``processed_at`` is set by the relay in the transaction that creates the event's deliveries.
    """

    __tablename__ = "notification_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_notification_events_unprocessed", "tenant_id", "created_at",
              postgresql_where=text("processed_at IS NULL")),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    type: Mapped[NotificationEventType] = mapped_column(
        value_enum(NotificationEventType, "notification_event_type")
    )
    idempotency_key: Mapped[str] = mapped_column(String(200))
    severity: Mapped[Severity | None] = mapped_column(
        value_enum(Severity, "monitoring_severity", create_type=False)
    )
    alert_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("monitoring_alerts.id"))
    incident_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("monitoring_incidents.id"))
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    credential_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("upstream_credentials.id", ondelete="SET NULL"))
    inverter_serial: Mapped[str | None] = mapped_column(String(64))
    site_upstream_id: Mapped[int | None] = mapped_column(BigInteger)
    summary: Mapped[str] = mapped_column(String(500))
    notify: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]


class ChannelKind(enum.StrEnum):
    """Where a channel's messages go."""

    GIVENERGY = "givenergy"
    """``POST /notification/send`` with a tenant credential (10 per hour: digests)."""
    EMAIL = "email"
    """E-mail over SMTP to the channel's recipients (digests)."""
    WEBHOOK = "webhook"
    """A signed POST per event to the channel's URL (Standard Webhooks)."""


class NotificationChannel(UUIDPrimaryKey, Base):
    """One recipient of a tenant's notifications: a GivEnergy account, a list of e-mail addresses or a webhook.

    ``quiet_start``/``quiet_end`` are local times in the tenant's timezone (the span may cross midnight); during
    them non-critical events are held and sent afterwards as one digest. ``digest_interval_seconds`` is the
    least time between two digests. A webhook is disabled (``disabled_at``) after too many consecutive failed
    attempts.
    """

    __tablename__ = "notification_channels"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    kind: Mapped[ChannelKind] = mapped_column(value_enum(ChannelKind, "notification_channel_kind"))
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    url: Mapped[str | None] = mapped_column(String(2000))
    email_to: Mapped[list[str] | None] = mapped_column(ARRAY(String(320)))
    credential_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("upstream_credentials.id", ondelete="SET NULL"))
    credential_pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The channel named a credential: once it is deleted (``credential_id`` nulled) the channel fails, it does
    not fall back to another token."""
    digest_interval_seconds: Mapped[int] = mapped_column(Integer, default=0)
    quiet_start: Mapped[time | None] = mapped_column(Time)
    quiet_end: Mapped[time | None] = mapped_column(Time)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    last_sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class WebhookSecret(UUIDPrimaryKey, Base):
    """A signing secret of a webhook channel, sealed at rest. During a rotation two are active (the old one until
    ``expires_at``), and every delivery is signed with each active secret."""

    __tablename__ = "notification_webhook_secrets"

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notification_channels.id", ondelete="CASCADE"),
                                                  index=True)
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]


class NotificationRule(UUIDPrimaryKey, Base):
    """Which events go to a channel: these types (empty: every type) at or above ``min_severity`` (``None``: any,
    events without a severity included)."""

    __tablename__ = "notification_rules"

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk(), index=True)
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notification_channels.id", ondelete="CASCADE"))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)
    min_severity: Mapped[Severity | None] = mapped_column(
        value_enum(Severity, "monitoring_severity", create_type=False))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class DeliveryState(enum.StrEnum):
    """Where one event stands on one channel."""

    PENDING = "pending"
    """Routed, not yet in a message."""
    HELD = "held"
    """Quiet hours: waits until ``hold_until``."""
    QUEUED = "queued"
    """In a message not yet delivered."""
    DELIVERED = "delivered"
    FAILED = "failed"
    """Its message gave up (replayable)."""


class NotificationDelivery(UUIDPrimaryKey, Base):
    """One event for one channel."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "channel_id"),
        Index("ix_notification_deliveries_waiting", "channel_id", "created_at",
              postgresql_where=text("state IN ('pending', 'held')")),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notification_events.id", ondelete="CASCADE"))
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notification_channels.id", ondelete="CASCADE"))
    state: Mapped[DeliveryState] = mapped_column(value_enum(DeliveryState, "notification_delivery_state"))
    hold_until: Mapped[datetime | None]
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("notification_messages.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime]


class MessageState(enum.StrEnum):
    """Where a message stands."""

    PENDING = "pending"
    """Due at ``next_attempt_at`` (the first try, a retry, a replay)."""
    DELIVERED = "delivered"
    FAILED = "failed"
    """Gave up: retries exhausted (replayable). A disabled webhook's messages stay pending."""


class NotificationMessage(UUIDPrimaryKey, Base):
    """What goes on the wire once, and again on each retry with the same id (see the module docstring).

    ``lease_until`` is set while an attempt is in flight: a worker killed mid-attempt leaves it to expire, and
    the sweeper then asks for the message again.
    """

    __tablename__ = "notification_messages"
    __table_args__ = (
        Index("ix_notification_messages_due", "next_attempt_at", postgresql_where=text("state = 'pending'")),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notification_channels.id", ondelete="CASCADE"),
                                                  index=True)
    state: Mapped[MessageState] = mapped_column(value_enum(MessageState, "notification_message_state"))
    title: Mapped[str | None] = mapped_column(String(300))
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    """Failed attempts since the last replay (the back-off exponent; throttled tries are not failures)."""
    plain_fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    """GivEnergy refused the text: send the plain fallback instead."""
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    replayed_at: Mapped[datetime | None]
    """When it was last replayed: its retries since have a horizon of their own, counted from then."""
    delivered_at: Mapped[datetime | None]


class AttemptStatus(enum.StrEnum):
    """How one try of a message ended."""

    STARTED = "started"
    """On its way (or the worker died: then the sweeper marks it interrupted)."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    THROTTLED = "throttled"
    """Not sent: the budget was spent (limiter or 429); tried again when it frees."""
    INTERRUPTED = "interrupted"
    """The worker died with the attempt in flight; whether it arrived is unknown."""


class NotificationAttempt(UUIDPrimaryKey, Base):
    """One try of a message: its number, how it ended, the answer's code or an excerpt, and its latency."""

    __tablename__ = "notification_attempts"
    __table_args__ = (UniqueConstraint("message_id", "number"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notification_messages.id", ondelete="CASCADE"))
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notification_channels.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[AttemptStatus] = mapped_column(value_enum(AttemptStatus, "notification_attempt_status"))
    response_code: Mapped[int | None] = mapped_column(Integer)
    excerpt: Mapped[str | None] = mapped_column(String(500))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
