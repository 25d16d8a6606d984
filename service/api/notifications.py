"""REST: notification channels (a webhook's secret shown once), routing rules, quiet hours, the delivery log,
replay and test sends."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Annotated, Any

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from sqlalchemy.ext.asyncio import AsyncSession

from service.api.dependencies import DbSession, ReadDb
from service.api.openapi import problems
from service.authn import PrincipalDep
from service.core.principal import Principal
from service.db.models.monitoring import Severity
from service.db.models.notifications import (
    AttemptStatus,
    ChannelKind,
    MessageState,
    NotificationChannel,
    NotificationMessage,
)
from service.notifications.service import MAX_DIGEST_INTERVAL, ChannelSpec, LogEntry, NotificationService
from service.runtime import Resources
from service.tenants.crypto import KeyRing

READ = problems(400, 401, 403, 429)
BY_ID = problems(400, 401, 403, 404, 409, 422, 429)
CREATE = problems(400, 401, 403, 404, 409, 422, 429)


class ChannelView(BaseModel):
    """A notification channel (a webhook's secret is never shown again after creation or rotation)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: ChannelKind
    name: str
    enabled: bool
    url: str | None
    email_to: list[str] | None
    credential_id: uuid.UUID | None
    digest_interval_seconds: int
    quiet_start: time | None
    quiet_end: time | None
    consecutive_failures: int
    disabled_at: datetime | None = Field(description="Set when a webhook was disabled after repeated failures.")
    disabled_reason: str | None
    last_sent_at: datetime | None


class CreatedChannelView(BaseModel):
    """The channel created, with its webhook signing secret (``whsec_...``): shown this once."""

    channel: ChannelView
    secret: str | None


class SecretView(BaseModel):
    """A new webhook signing secret: shown this once."""

    secret: str


class ChannelInput(BaseModel):
    """A new channel: ``url`` for a webhook, ``email_to`` for e-mail, optionally ``credential_id`` for GivEnergy."""

    model_config = ConfigDict(extra="forbid")

    kind: ChannelKind
    name: str = Field(min_length=1, max_length=200)
    url: str | None = Field(default=None, max_length=2000)
    email_to: list[str] = Field(default_factory=list, max_length=20)
    credential_id: uuid.UUID | None = None
    digest_interval_seconds: int = Field(default=0, ge=0, le=MAX_DIGEST_INTERVAL)
    quiet_start: time | None = Field(default=None, description="Start of quiet hours, tenant-local.")
    quiet_end: time | None = Field(default=None, description="End of quiet hours, tenant-local.")


class ChannelUpdate(BaseModel):
    """Changes to a channel; ``enabled: true`` also re-enables a webhook disabled after failures. What a channel
    is (its kind, name, URL, recipients, credential) is fixed when it is created: another is a new channel."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    digest_interval_seconds: int | None = Field(default=None, ge=0, le=MAX_DIGEST_INTERVAL)
    quiet_start: time | None = None
    quiet_end: time | None = None
    clear_quiet_hours: bool = False

    @model_validator(mode="before")
    @classmethod
    def _creation_only(cls, data: Any) -> Any:
        """Name each field given that only creation sets, and say what to do instead."""
        if isinstance(data, dict):
            fixed = [name for name in ChannelInput.model_fields if name in data and name not in cls.model_fields]
            if fixed:
                raise ValidationError.from_exception_data(cls.__name__, [InitErrorDetails(
                    type=PydanticCustomError("fixed_at_creation", "{name} cannot be changed: create a new channel "
                                             "(and delete this one)", {"name": name}),
                    loc=(name,), input=data[name]) for name in fixed])
        return data


class RuleInput(BaseModel):
    """Events of these types (none: every type) at or above ``min_severity`` go to the channel."""

    model_config = ConfigDict(extra="forbid")

    channel_id: uuid.UUID
    event_types: list[str] = Field(default_factory=list, max_length=20)
    min_severity: Severity | None = None


class RuleView(BaseModel):
    """A routing rule."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    channel_id: uuid.UUID
    event_types: list[str]
    min_severity: Severity | None
    enabled: bool


class AttemptView(BaseModel):
    """One try of a message."""

    model_config = ConfigDict(from_attributes=True)

    number: int
    status: AttemptStatus
    response_code: int | None
    excerpt: str | None
    latency_ms: int | None
    started_at: datetime
    finished_at: datetime | None


class MessageView(BaseModel):
    """A message of the delivery log (its id is the idempotency id: ``webhook-id`` is ``msg_<hex>``)."""

    id: uuid.UUID
    channel_id: uuid.UUID
    state: MessageState
    title: str | None
    event_count: int
    attempts: list[AttemptView]
    next_attempt_at: datetime
    created_at: datetime
    replayed_at: datetime | None = Field(description="When it was last replayed (null: never).")
    delivered_at: datetime | None

    @classmethod
    def of(cls, message: NotificationMessage, entry: LogEntry | None = None) -> MessageView:
        return cls(id=message.id, channel_id=message.channel_id, state=message.state, title=message.title,
                   event_count=message.event_count,
                   attempts=[AttemptView.model_validate(a) for a in (entry.attempts if entry else [])],
                   next_attempt_at=message.next_attempt_at, created_at=message.created_at,
                   replayed_at=message.replayed_at, delivered_at=message.delivered_at)


class TestSendView(BaseModel):
    """The test event sent."""

    event_id: uuid.UUID


ResourcesDep = NamedDependency[Resources]
KeyRingDep = NamedDependency[KeyRing]


def _service(session: AsyncSession, principal: Principal, key_ring: KeyRing,
             resources: Resources) -> NotificationService:
    return NotificationService(session, principal, key_ring, resources.settings.notifications)


def _view(channel: NotificationChannel) -> ChannelView:
    return ChannelView.model_validate(channel)


class NotificationController(Controller):
    """Channels and rules (admin), the delivery log (operator), replay and test sends (operator)."""

    path = "/api/v1/notifications"
    tags = ["notifications"]

    @get("/channels", responses=READ)
    async def list_channels(self, principal: PrincipalDep, read_session: ReadDb, key_ring: KeyRingDep,
                            resources: ResourcesDep) -> list[ChannelView]:
        """The tenant's channels (operator)."""
        return [_view(c) for c in await _service(read_session, principal, key_ring, resources).channels()]

    @post("/channels", responses=CREATE)
    async def create_channel(self, data: JSONBody[ChannelInput], principal: PrincipalDep, db_session: DbSession,
                             key_ring: KeyRingDep, resources: ResourcesDep) -> CreatedChannelView:
        """Add a channel (admin). A webhook's signing secret is in the answer, and never shown again."""
        created = await _service(db_session, principal, key_ring, resources).create_channel(ChannelSpec(
            kind=data.kind, name=data.name, url=data.url, email_to=tuple(data.email_to),
            credential_id=data.credential_id, digest_interval_seconds=data.digest_interval_seconds,
            quiet_start=data.quiet_start, quiet_end=data.quiet_end))
        return CreatedChannelView(channel=_view(created.channel), secret=created.secret)

    @patch("/channels/{channel_id:uuid}", responses=BY_ID)
    async def update_channel(self, channel_id: FromPath[uuid.UUID], data: JSONBody[ChannelUpdate],
                             principal: PrincipalDep, db_session: DbSession, key_ring: KeyRingDep,
                             resources: ResourcesDep) -> ChannelView:
        """Enable or disable a channel, set its digest interval or quiet hours (admin)."""
        channel = await _service(db_session, principal, key_ring, resources).update_channel(
            channel_id, enabled=data.enabled, digest_interval_seconds=data.digest_interval_seconds,
            quiet_start=data.quiet_start, quiet_end=data.quiet_end, clear_quiet_hours=data.clear_quiet_hours)
        return _view(channel)

    @delete("/channels/{channel_id:uuid}", responses=BY_ID, status_code=HTTP_204_NO_CONTENT)
    async def delete_channel(self, channel_id: FromPath[uuid.UUID], principal: PrincipalDep, db_session: DbSession,
                             key_ring: KeyRingDep, resources: ResourcesDep) -> None:
        """Remove a channel with its rules and log (admin)."""
        await _service(db_session, principal, key_ring, resources).delete_channel(channel_id)

    @post("/channels/{channel_id:uuid}/rotate-secret", responses=BY_ID, status_code=200)
    async def rotate_secret(self, channel_id: FromPath[uuid.UUID], principal: PrincipalDep, db_session: DbSession,
                            key_ring: KeyRingDep, resources: ResourcesDep) -> SecretView:
        """A new webhook signing secret, shown once; the old one keeps signing during the overlap (admin)."""
        return SecretView(secret=await _service(db_session, principal, key_ring, resources).rotate_secret(channel_id))

    @post("/channels/{channel_id:uuid}/test", responses=BY_ID, status_code=202)
    async def test_send(self, channel_id: FromPath[uuid.UUID], principal: PrincipalDep, db_session: DbSession,
                        key_ring: KeyRingDep, resources: ResourcesDep) -> TestSendView:
        """Send a test notification to the channel (operator)."""
        event_id = await _service(db_session, principal, key_ring, resources).test_send(channel_id)
        return TestSendView(event_id=event_id)

    @get("/rules", responses=READ)
    async def list_rules(self, principal: PrincipalDep, read_session: ReadDb, key_ring: KeyRingDep,
                         resources: ResourcesDep) -> list[RuleView]:
        """The tenant's routing rules (operator)."""
        return [RuleView.model_validate(r) for r in await _service(read_session, principal, key_ring,
                                                                   resources).rules()]

    @post("/rules", responses=CREATE)
    async def create_rule(self, data: JSONBody[RuleInput], principal: PrincipalDep, db_session: DbSession,
                          key_ring: KeyRingDep, resources: ResourcesDep) -> RuleView:
        """Route events to a channel (admin)."""
        rule = await _service(db_session, principal, key_ring, resources).add_rule(
            data.channel_id, data.event_types, data.min_severity)
        return RuleView.model_validate(rule)

    @delete("/rules/{rule_id:uuid}", responses=BY_ID, status_code=HTTP_204_NO_CONTENT)
    async def delete_rule(self, rule_id: FromPath[uuid.UUID], principal: PrincipalDep, db_session: DbSession,
                          key_ring: KeyRingDep, resources: ResourcesDep) -> None:
        """Remove a rule (admin)."""
        await _service(db_session, principal, key_ring, resources).delete_rule(rule_id)

    @get("/messages", responses=READ)
    async def delivery_log(self, principal: PrincipalDep, read_session: ReadDb, key_ring: KeyRingDep,
                           resources: ResourcesDep,
                           channel_id: Annotated[uuid.UUID | None, QueryParameter(
                               description="Only this channel's messages.")] = None,
                           limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50) -> list[MessageView]:
        """The delivery log, newest first, each message with its attempts (operator)."""
        entries = await _service(read_session, principal, key_ring, resources).log(channel_id=channel_id,
                                                                                  limit=limit)
        return [MessageView.of(entry.message, entry) for entry in entries]

    @post("/messages/{message_id:uuid}/replay", responses=BY_ID, status_code=202)
    async def replay(self, message_id: FromPath[uuid.UUID], principal: PrincipalDep, db_session: DbSession,
                     key_ring: KeyRingDep, resources: ResourcesDep) -> MessageView:
        """Send a message again with the same id (operator)."""
        message = await _service(db_session, principal, key_ring, resources).replay(message_id)
        return MessageView.of(message)
