"""Every query of the notifications domain; each repository is bound to one tenant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.tenancy import TenantId
from service.db.models.notifications import (
    AttemptStatus,
    DeliveryState,
    MessageState,
    NotificationAttempt,
    NotificationChannel,
    NotificationDelivery,
    NotificationEvent,
    NotificationMessage,
    NotificationRule,
    WebhookSecret,
)
from service.db.models.tenant import Tenant
from service.notifications.digest import EventView

WAITING = (DeliveryState.PENDING, DeliveryState.HELD)


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(NotificationDelivery.state == DeliveryState.PENDING,
               and_(NotificationDelivery.state == DeliveryState.HELD, NotificationDelivery.hold_until <= now))


class NotificationRepository:
    """Queries of one tenant's notifications."""

    def __init__(self, session: AsyncSession, tenant_id: TenantId) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def timezone(self) -> str:
        """The tenant's timezone name."""
        found = await self.session.scalar(select(Tenant.timezone).where(Tenant.id == self.tenant_id))
        return found or "UTC"

    async def unprocessed_events(self, limit: int) -> Sequence[NotificationEvent]:
        """Events not routed yet, oldest first, locked (skipping those another relay holds)."""
        return (await self.session.scalars(
            select(NotificationEvent)
            .where(NotificationEvent.tenant_id == self.tenant_id, NotificationEvent.processed_at.is_(None))
            .order_by(NotificationEvent.created_at, NotificationEvent.id).limit(limit)
            .with_for_update(skip_locked=True))).all()

    async def claim_test_event(self, key: str, now: datetime) -> uuid.UUID:
        """Mark the event of ``key`` routed (a test send goes to its one channel, not by the rules)."""
        event = await self.session.scalar(select(NotificationEvent).where(
            NotificationEvent.tenant_id == self.tenant_id, NotificationEvent.idempotency_key == key))
        assert event is not None  # noqa: S101 - recorded on this session just before
        event.processed_at = now
        return event.id

    async def channels(self) -> Sequence[NotificationChannel]:
        """Every channel of the tenant, by name."""
        return (await self.session.scalars(select(NotificationChannel)
                                           .where(NotificationChannel.tenant_id == self.tenant_id)
                                           .order_by(NotificationChannel.name))).all()

    async def channel(self, channel_id: uuid.UUID, *, lock: bool = False) -> NotificationChannel | None:
        """One channel (locked with ``lock``)."""
        statement = select(NotificationChannel).where(NotificationChannel.tenant_id == self.tenant_id,
                                                      NotificationChannel.id == channel_id)
        return await self.session.scalar(statement.with_for_update() if lock else statement)

    async def rules(self, *, enabled_only: bool = False) -> Sequence[NotificationRule]:
        """The tenant's routing rules."""
        statement = select(NotificationRule).where(NotificationRule.tenant_id == self.tenant_id)
        if enabled_only:
            statement = statement.where(NotificationRule.enabled)
        return (await self.session.scalars(statement.order_by(NotificationRule.created_at))).all()

    async def rule(self, rule_id: uuid.UUID) -> NotificationRule | None:
        """One rule."""
        return await self.session.scalar(select(NotificationRule).where(NotificationRule.tenant_id == self.tenant_id,
                                                                        NotificationRule.id == rule_id))

    async def add_deliveries(self, routes: Sequence[tuple[uuid.UUID, uuid.UUID, datetime | None]],
                             now: datetime) -> None:
        """Route events to channels, ``(event id, channel id, held until)`` each, in one statement (each pair
        once: a second routing adds nothing)."""
        if not routes:
            return
        await self.session.execute(insert(NotificationDelivery).values([
            {"id": uuid.uuid4(), "tenant_id": self.tenant_id, "event_id": event_id, "channel_id": channel_id,
             "state": DeliveryState.HELD if hold_until is not None else DeliveryState.PENDING,
             "hold_until": hold_until, "created_at": now}
            for event_id, channel_id, hold_until in routes]).on_conflict_do_nothing(
                index_elements=["event_id", "channel_id"]))

    async def due_deliveries(self, channel_id: uuid.UUID, now: datetime, limit: int) -> Sequence[NotificationDelivery]:
        """Deliveries of the channel ready for a message (pending, or held until a time now past), oldest first."""
        return (await self.session.scalars(
            select(NotificationDelivery)
            .where(NotificationDelivery.tenant_id == self.tenant_id, NotificationDelivery.channel_id == channel_id,
                   _due(now))
            .order_by(NotificationDelivery.created_at, NotificationDelivery.id).limit(limit)
            .with_for_update(skip_locked=True))).all()

    async def next_release(self, channel_id: uuid.UUID) -> datetime | None:
        """When the channel's earliest held delivery is released."""
        return await self.session.scalar(
            select(NotificationDelivery.hold_until)
            .where(NotificationDelivery.tenant_id == self.tenant_id, NotificationDelivery.channel_id == channel_id,
                   NotificationDelivery.state == DeliveryState.HELD)
            .order_by(NotificationDelivery.hold_until).limit(1))

    async def open_message(self, channel_id: uuid.UUID) -> NotificationMessage | None:
        """The channel's message not yet delivered nor given up that has waited longest: since it was created, or
        since it was last replayed (a digest's new events go into this one; a replayed message counts from its
        replay, so it does not take them from a digest that waited before it)."""
        return await self.session.scalar(
            select(NotificationMessage)
            .where(NotificationMessage.tenant_id == self.tenant_id, NotificationMessage.channel_id == channel_id,
                   NotificationMessage.state == MessageState.PENDING)
            .order_by(func.coalesce(NotificationMessage.replayed_at, NotificationMessage.created_at),
                      NotificationMessage.id).limit(1))

    async def message(self, message_id: uuid.UUID, *, lock: bool = False) -> NotificationMessage | None:
        """One message (locked with ``lock``)."""
        statement = select(NotificationMessage).where(NotificationMessage.tenant_id == self.tenant_id,
                                                      NotificationMessage.id == message_id)
        return await self.session.scalar(statement.with_for_update() if lock else statement)

    async def locked_message(self, message_id: uuid.UUID,
                             ) -> tuple[NotificationMessage | None, NotificationChannel | None]:
        """A message and its channel, both locked, the channel first: the order a flush takes them in (a send
        taking the message first would deadlock against a flush of its channel)."""
        channel_id = await self.session.scalar(
            select(NotificationMessage.channel_id).where(NotificationMessage.tenant_id == self.tenant_id,
                                                         NotificationMessage.id == message_id))
        if channel_id is None:
            return None, None
        channel = await self.channel(channel_id, lock=True)
        return await self.message(message_id, lock=True), channel

    async def message_of(self, event_id: uuid.UUID, channel_id: uuid.UUID) -> NotificationMessage | None:
        """The message carrying an event to a channel."""
        return await self.session.scalar(
            select(NotificationMessage).join(NotificationDelivery, NotificationDelivery.message_id
                                             == NotificationMessage.id)
            .where(NotificationDelivery.tenant_id == self.tenant_id, NotificationDelivery.event_id == event_id,
                   NotificationDelivery.channel_id == channel_id))

    async def went_on_the_wire(self, message_id: uuid.UUID) -> bool:
        """Whether any attempt of the message may have reached its recipient (throttled ones did not)."""
        return bool(await self.session.scalar(select(exists().where(
            NotificationAttempt.message_id == message_id, NotificationAttempt.status != AttemptStatus.THROTTLED))))

    async def attach(self, deliveries: Sequence[NotificationDelivery], message: NotificationMessage) -> None:
        """Put ``deliveries`` into ``message`` (added to the session already: it is written first)."""
        await self.session.flush()
        for delivery in deliveries:
            self.put_in(delivery, message)

    @staticmethod
    def put_in(delivery: NotificationDelivery, message: NotificationMessage) -> None:
        """Put ``delivery`` into ``message`` (written already)."""
        delivery.message_id, delivery.state = message.id, DeliveryState.QUEUED
        message.event_count += 1

    async def events_of(self, message_id: uuid.UUID) -> list[EventView]:
        """The events of a message, oldest first."""
        rows = (await self.session.scalars(
            select(NotificationEvent).join(NotificationDelivery, NotificationDelivery.event_id == NotificationEvent.id)
            .where(NotificationDelivery.tenant_id == self.tenant_id, NotificationDelivery.message_id == message_id)
            .order_by(NotificationEvent.created_at, NotificationEvent.id))).all()
        return [view(row) for row in rows]

    async def views(self, event_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, EventView]:
        """The events of these ids, by id."""
        rows = (await self.session.scalars(select(NotificationEvent).where(
            NotificationEvent.tenant_id == self.tenant_id, NotificationEvent.id.in_(event_ids)))).all()
        return {row.id: view(row) for row in rows}

    async def settle_deliveries(self, message_id: uuid.UUID, state: DeliveryState) -> None:
        """Move every delivery of a message to ``state``."""
        await self.session.execute(update(NotificationDelivery)
                                   .where(NotificationDelivery.tenant_id == self.tenant_id,
                                          NotificationDelivery.message_id == message_id)
                                   .values(state=state))

    async def interrupt_started(self, message_id: uuid.UUID, now: datetime) -> None:
        """Mark the message's attempts left in flight by a dead worker as interrupted."""
        await self.session.execute(update(NotificationAttempt)
                                   .where(NotificationAttempt.tenant_id == self.tenant_id,
                                          NotificationAttempt.message_id == message_id,
                                          NotificationAttempt.status == AttemptStatus.STARTED)
                                   .values(status=AttemptStatus.INTERRUPTED, finished_at=now))

    async def attempt(self, message_id: uuid.UUID, number: int) -> NotificationAttempt | None:
        """One attempt of a message."""
        return await self.session.scalar(select(NotificationAttempt).where(
            NotificationAttempt.tenant_id == self.tenant_id, NotificationAttempt.message_id == message_id,
            NotificationAttempt.number == number))

    async def first_failure_since(self, channel_id: uuid.UUID, since: datetime | None) -> datetime | None:
        """When the channel's first failed attempt after ``since`` (its last success; ``None``: ever) started."""
        statement = select(func.min(NotificationAttempt.started_at)).where(
            NotificationAttempt.tenant_id == self.tenant_id, NotificationAttempt.channel_id == channel_id,
            NotificationAttempt.status == AttemptStatus.FAILED)
        if since is not None:
            statement = statement.where(NotificationAttempt.started_at > since)
        return await self.session.scalar(statement)

    async def active_secrets(self, channel_id: uuid.UUID, now: datetime) -> Sequence[WebhookSecret]:
        """The webhook's secrets that still sign (newest first)."""
        return (await self.session.scalars(
            select(WebhookSecret)
            .where(WebhookSecret.tenant_id == self.tenant_id, WebhookSecret.channel_id == channel_id,
                   or_(WebhookSecret.expires_at.is_(None), WebhookSecret.expires_at > now))
            .order_by(WebhookSecret.created_at.desc()))).all()

    async def messages(self, *, channel_id: uuid.UUID | None, limit: int) -> Sequence[NotificationMessage]:
        """The delivery log: newest messages first."""
        statement = select(NotificationMessage).where(NotificationMessage.tenant_id == self.tenant_id)
        if channel_id is not None:
            statement = statement.where(NotificationMessage.channel_id == channel_id)
        return (await self.session.scalars(statement.order_by(NotificationMessage.created_at.desc(),
                                                              NotificationMessage.id).limit(limit))).all()

    async def attempts_of(self, message_ids: Sequence[uuid.UUID]) -> Sequence[NotificationAttempt]:
        """The attempts of these messages, by message and number."""
        return (await self.session.scalars(
            select(NotificationAttempt)
            .where(NotificationAttempt.tenant_id == self.tenant_id, NotificationAttempt.message_id.in_(message_ids))
            .order_by(NotificationAttempt.message_id, NotificationAttempt.number))).all()


def view(event: NotificationEvent) -> EventView:
    """What messages show of an event."""
    return EventView(id=event.id, type=event.type.value, severity=event.severity.value if event.severity else None,
                     summary=event.summary, created_at=event.created_at, inverter_serial=event.inverter_serial,
                     site_upstream_id=event.site_upstream_id, alert_id=event.alert_id, incident_id=event.incident_id,
                     campaign_id=event.campaign_id, credential_id=event.credential_id)


@dataclass(frozen=True)
class Backlog:
    """What the sweeper asks for again: tenants with unrouted events, ``(tenant, channel)`` pairs with due
    deliveries and no open message, and ``(tenant, message)`` pairs due (or whose attempt's lease expired)."""

    relay: list[uuid.UUID]
    flush: list[tuple[uuid.UUID, uuid.UUID]]
    send: list[tuple[uuid.UUID, uuid.UUID]]


async def backlog(session: AsyncSession, now: datetime) -> Backlog:
    """Every tenant's work that no job may be carrying (see :class:`Backlog`)."""
    relay = (await session.scalars(select(NotificationEvent.tenant_id).distinct()
                                   .where(NotificationEvent.processed_at.is_(None)))).all()
    open_message = exists().where(NotificationMessage.channel_id == NotificationDelivery.channel_id,
                                  NotificationMessage.state == MessageState.PENDING)
    flush = (await session.execute(select(NotificationDelivery.tenant_id, NotificationDelivery.channel_id).distinct()
                                   .where(_due(now), ~open_message))).all()
    send = (await session.execute(select(NotificationMessage.tenant_id, NotificationMessage.id).where(
        NotificationMessage.state == MessageState.PENDING, NotificationMessage.next_attempt_at <= now,
        or_(NotificationMessage.lease_until.is_(None), NotificationMessage.lease_until <= now)))).all()
    return Backlog(list(relay), [(t, c) for t, c in flush], [(t, m) for t, m in send])
