# mypy: disable-error-code="untyped-decorator"
"""GraphQL types of notifications."""

from __future__ import annotations

import datetime as dt

import strawberry

from service.db.models import notifications as n
from service.db.models.monitoring import Severity
from service.db.models.notifications import AttemptStatus, ChannelKind, MessageState
from service.notifications.service import LogEntry

strawberry.enum(ChannelKind, description="givenergy: the account's app; email: SMTP; webhook: signed POSTs.")
strawberry.enum(MessageState, description="pending (due at nextAttemptAt) -> delivered, or failed (replayable).")
strawberry.enum(AttemptStatus, description="How one try of a message ended.")


@strawberry.type(description="Where notifications go: a GivEnergy account, e-mail recipients or a webhook.")
class NotificationChannel:
    id: strawberry.ID
    kind: ChannelKind
    name: str
    enabled: bool
    url: str | None
    email_to: list[str] | None
    credential_id: strawberry.ID | None
    digest_interval_seconds: int = strawberry.field(description="Least time between two digests.")
    quiet_start: dt.time | None = strawberry.field(description="Start of quiet hours, tenant-local.")
    quiet_end: dt.time | None
    consecutive_failures: int
    disabled_at: dt.datetime | None = strawberry.field(description="A webhook disabled after repeated failures.")
    disabled_reason: str | None
    last_sent_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: n.NotificationChannel) -> NotificationChannel:
        return cls(id=strawberry.ID(str(row.id)), kind=row.kind, name=row.name, enabled=row.enabled, url=row.url,
                   email_to=row.email_to,
                   credential_id=strawberry.ID(str(row.credential_id)) if row.credential_id else None,
                   digest_interval_seconds=row.digest_interval_seconds, quiet_start=row.quiet_start,
                   quiet_end=row.quiet_end, consecutive_failures=row.consecutive_failures,
                   disabled_at=row.disabled_at, disabled_reason=row.disabled_reason, last_sent_at=row.last_sent_at)


@strawberry.type(description="Events of these types (empty: all) at or above a severity go to a channel.")
class NotificationRule:
    id: strawberry.ID
    channel_id: strawberry.ID
    event_types: list[str]
    min_severity: Severity | None
    enabled: bool

    @classmethod
    def from_row(cls, row: n.NotificationRule) -> NotificationRule:
        return cls(id=strawberry.ID(str(row.id)), channel_id=strawberry.ID(str(row.channel_id)),
                   event_types=list(row.event_types), min_severity=row.min_severity, enabled=row.enabled)


@strawberry.type(description="One try of a message.")
class NotificationAttempt:
    number: int
    status: AttemptStatus
    response_code: int | None
    excerpt: str | None = strawberry.field(description="The start of the answer, or what went wrong.")
    latency_ms: int | None
    started_at: dt.datetime
    finished_at: dt.datetime | None


@strawberry.type(description="What went on the wire once (and again on each retry with the same id).")
class NotificationMessage:
    id: strawberry.ID = strawberry.field(description="The idempotency id (a webhook's webhook-id is msg_<hex>).")
    channel_id: strawberry.ID
    state: MessageState
    title: str | None
    event_count: int
    next_attempt_at: dt.datetime
    created_at: dt.datetime
    replayed_at: dt.datetime | None = strawberry.field(description="When it was last replayed (null: never).")
    delivered_at: dt.datetime | None
    attempts: list[NotificationAttempt]

    @classmethod
    def from_row(cls, row: n.NotificationMessage, entry: LogEntry | None = None) -> NotificationMessage:
        attempts = [NotificationAttempt(number=a.number, status=a.status, response_code=a.response_code,
                                        excerpt=a.excerpt, latency_ms=a.latency_ms, started_at=a.started_at,
                                        finished_at=a.finished_at) for a in (entry.attempts if entry else [])]
        return cls(id=strawberry.ID(str(row.id)), channel_id=strawberry.ID(str(row.channel_id)), state=row.state,
                   title=row.title, event_count=row.event_count, next_attempt_at=row.next_attempt_at,
                   created_at=row.created_at, replayed_at=row.replayed_at, delivered_at=row.delivered_at,
                   attempts=attempts)
