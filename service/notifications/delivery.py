"""Relay, pack and send: the outbox's events reach every channel at least once, whatever process dies where.

Three short steps, each its own job and transactions (never a transaction across a send):

- **relay** (per tenant): locks unrouted events (``SKIP LOCKED``), creates one delivery per matching channel,
  marks the events processed, commits. Non-critical deliveries to GivEnergy and e-mail channels inside quiet
  hours are held until the hours end.
- **flush** (per channel): packs due deliveries into messages: one per event for a webhook (and sends their first
  attempts, a few at once); for GivEnergy and e-mail one digest at a time (at most ``digest_max_events``, and for
  GivEnergy only as many as fit its body length: the rest wait for the next digest), topped up with newer events
  while it has not been on the wire, and no sooner than the channel's digest interval after the last one.
- **send** (per message): records the attempt as started and takes a lease (commit), sends, then records how it
  went (commit). Success settles the deliveries; a throttled send (no GivEnergy budget) waits for the budget; a
  failure is retried with exponential back-off and jitter until ``webhook_retry_horizon_seconds`` after the
  message was created (or last replayed); a webhook failing ``webhook_disable_after`` attempts in a row, over at least
  ``webhook_disable_min_span_seconds``, is disabled (its messages stay pending and go out once it is enabled).

A worker killed mid-send leaves a started attempt and a lease: once the lease expires the sweeper asks for the
message again, the attempt is marked interrupted, and the message is sent again with the same id (a webhook's
``webhook-id``, an e-mail's ``Message-ID``): at least once per channel, duplicates recognisable.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.core.clock import utcnow
from service.core.tenancy import TenantId
from service.db.models.monitoring import Severity
from service.db.models.notifications import (
    AttemptStatus,
    ChannelKind,
    DeliveryState,
    MessageState,
    NotificationAttempt,
    NotificationChannel,
    NotificationDelivery,
    NotificationMessage,
)
from service.notifications import channels, digest, routing
from service.notifications.repository import NotificationRepository, backlog
from service.notifications.signing import webhook_id
from service.settings import NotificationSettings
from service.tenants.crypto import KeyRing, Sealed
from service.upstream import Upstream

WEBHOOK_BATCH = 100
"""Webhook messages made (and first sent) by one flush; a fuller backlog asks for another flush."""

THROTTLE_FALLBACK_SECONDS = 60.0
"""Wait after a throttled send whose answer said nothing of when the budget frees."""


@dataclass(frozen=True)
class Ask:
    """A job to enqueue once the transaction that asked for it has committed."""

    step: Literal["relay", "flush", "send"]
    tenant_id: uuid.UUID
    target_id: uuid.UUID | None = None
    not_before: datetime | None = None


Enqueue = Callable[[list[Ask]], Awaitable[None]]


def retry_delay(failures: int, base_seconds: float, rng: random.Random) -> float:
    """Exponential back-off with jitter: ``base * 2**(failures-1)``, scaled by a random factor in [0.5, 1]."""
    ceiling = base_seconds * 2.0 ** max(0, failures - 1)
    return ceiling * (0.5 + rng.random() / 2)


def secret_associated_data(tenant_id: uuid.UUID, channel_id: uuid.UUID) -> bytes:
    """What a webhook secret's ciphertext is bound to (a copy on another row does not open)."""
    return f"webhook-secret:{tenant_id}:{channel_id}".encode()


@dataclass
class _Prepared:
    """A message ready to go: what to send and where."""

    message_id: uuid.UUID
    number: int
    channel: NotificationChannel
    events: list[digest.EventView]
    plain: bool
    secrets: list[str] = field(default_factory=list)
    timezone: str = "UTC"


class Notifier:
    """The delivery machinery (see the module docstring).

    Args:
        session_factory: Where the outbox lives.
        upstream: The one way to GivEnergy (its limiter's notification bucket paces the GivEnergy channel).
        key_ring: Opens webhook secrets.
        settings: The ``notifications`` settings group.
        enqueue: Enqueues what a committed step asked for.
        clock: The time (tests move it).
        rng: Jitter of the back-off.
    """

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], upstream: Upstream, key_ring: KeyRing,
                 settings: NotificationSettings, enqueue: Enqueue, *, clock: Callable[[], datetime] = utcnow,
                 rng: random.Random | None = None) -> None:
        self._sessions = session_factory
        self._upstream = upstream
        self._key_ring = key_ring
        self.settings = settings
        self._enqueue = enqueue
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy

    # --- relay ---------------------------------------------------------------------------------------------

    async def relay(self, tenant_id: TenantId, *, batch: int = 500) -> int:
        """Route the tenant's unrouted events (at most ``batch``; asks for itself again when there were more).

        Returns:
            How many events were routed.
        """
        asks: list[Ask] = []
        async with self._sessions() as session, session.begin():
            repo = NotificationRepository(session, tenant_id)
            events = await repo.unprocessed_events(batch)
            if not events:
                return 0
            now = self._clock()
            zone = await repo.timezone()
            by_id = {channel.id: channel for channel in await repo.channels() if channel.enabled}
            rules = await repo.rules(enabled_only=True)
            routes: list[tuple[uuid.UUID, uuid.UUID, datetime | None]] = []
            for event in events:
                event.processed_at = now
                if not event.notify:
                    continue
                targets = {rule.channel_id for rule in rules
                           if rule.channel_id in by_id
                           and routing.matches(rule.event_types, rule.min_severity, event.type.value, event.severity)}
                routes.extend((event.id, channel_id, self._hold(by_id[channel_id], event.severity, zone, now))
                              for channel_id in targets)
            await repo.add_deliveries(routes, now)
            touched = {channel_id for _, channel_id, _ in routes}
            asks = [Ask("flush", tenant_id, channel_id) for channel_id in sorted(touched)]
            if len(events) == batch:
                asks.append(Ask("relay", tenant_id))
        await self._enqueue(asks)
        return len(events)

    def _hold(self, channel: NotificationChannel, severity: Severity | None, zone: str,
              now: datetime) -> datetime | None:
        # Webhooks feed machines: quiet hours are for people.
        if channel.kind is ChannelKind.WEBHOOK or severity is Severity.CRITICAL:
            return None
        return routing.quiet_until(now, zone, channel.quiet_start, channel.quiet_end)

    # --- flush ---------------------------------------------------------------------------------------------

    async def flush(self, tenant_id: TenantId, channel_id: uuid.UUID) -> int:
        """Pack the channel's due deliveries into messages (see the module docstring).

        Returns:
            How many deliveries were packed.
        """
        asks: list[Ask] = []
        webhooks: list[uuid.UUID] = []
        async with self._sessions() as session, session.begin():
            repo = NotificationRepository(session, tenant_id)
            channel = await repo.channel(channel_id, lock=True)
            if channel is None or not channel.enabled or channel.disabled_at is not None:
                return 0
            now = self._clock()
            if channel.kind is ChannelKind.WEBHOOK:
                webhooks = await self._pack_each(repo, channel, now, asks)
                packed = len(webhooks)
            else:
                packed = await self._pack_digest(repo, channel, now, asks)
        await self._enqueue(asks)
        await self._send_each(tenant_id, webhooks)
        return packed

    async def _pack_each(self, repo: NotificationRepository, channel: NotificationChannel, now: datetime,
                         asks: list[Ask]) -> list[uuid.UUID]:
        deliveries = await repo.due_deliveries(channel.id, now, WEBHOOK_BATCH)
        pairs = [(delivery, self._new_message(channel, now)) for delivery in deliveries]  # one message each
        repo.session.add_all([message for _, message in pairs])
        await repo.session.flush()  # the messages first: the deliveries refer to them
        for delivery, message in pairs:
            repo.put_in(delivery, message)
        messages = [message.id for _, message in pairs]
        if len(deliveries) == WEBHOOK_BATCH:
            asks.append(Ask("flush", channel.tenant_id, channel.id))
        return messages

    async def _send_each(self, tenant_id: TenantId, message_ids: list[uuid.UUID]) -> None:
        # The first attempt of each new webhook message goes out from here, a few at once (one job per message
        # costs a queue round trip each). Messages left unsent by a dead worker are due: the sweeper asks for them.
        gate = asyncio.Semaphore(self.settings.webhook_concurrency)

        async def one(message_id: uuid.UUID) -> None:
            async with gate:
                await self.send(tenant_id, message_id)

        await asyncio.gather(*(one(message_id) for message_id in message_ids))

    async def _pack_digest(self, repo: NotificationRepository, channel: NotificationChannel, now: datetime,
                           asks: list[Ask]) -> int:
        cap = self.settings.digest_max_events
        message = await repo.open_message(channel.id)
        if message is not None:
            packed = 0
            if message.event_count < cap and not await repo.went_on_the_wire(message.id):
                deliveries = await self._fitting(repo, channel, message.id,
                                                 await repo.due_deliveries(channel.id, now, cap - message.event_count))
                await repo.attach(deliveries, message)
                packed = len(deliveries)
            asks.append(Ask("send", channel.tenant_id, message.id, not_before=message.next_attempt_at))
            return packed
        deliveries = await repo.due_deliveries(channel.id, now, cap)
        if not deliveries:
            release = await repo.next_release(channel.id)
            if release is not None:
                asks.append(Ask("flush", channel.tenant_id, channel.id, not_before=release))
            return 0
        if channel.last_sent_at is not None and channel.digest_interval_seconds:
            next_digest = channel.last_sent_at + timedelta(seconds=channel.digest_interval_seconds)
            if next_digest > now:
                asks.append(Ask("flush", channel.tenant_id, channel.id, not_before=next_digest))
                return 0
        deliveries = await self._fitting(repo, channel, None, deliveries)
        message = self._new_message(channel, now)
        repo.session.add(message)
        await repo.attach(deliveries, message)
        asks.append(Ask("send", channel.tenant_id, message.id))
        return len(deliveries)

    @staticmethod
    async def _fitting(repo: NotificationRepository, channel: NotificationChannel, message_id: uuid.UUID | None,
                       deliveries: Sequence[NotificationDelivery]) -> Sequence[NotificationDelivery]:
        # A GivEnergy body has a length cap: what does not fit stays due, for the next digest.
        if channel.kind is not ChannelKind.GIVENERGY or not deliveries:
            return deliveries
        held = await repo.events_of(message_id) if message_id is not None else []
        views = await repo.views([delivery.event_id for delivery in deliveries])
        return deliveries[:digest.fitting(held, [views[delivery.event_id] for delivery in deliveries])]

    @staticmethod
    def _new_message(channel: NotificationChannel, now: datetime) -> NotificationMessage:
        return NotificationMessage(id=uuid.uuid4(), tenant_id=channel.tenant_id, channel_id=channel.id,
                                   state=MessageState.PENDING, event_count=0, attempts=0, failures=0,
                                   plain_fallback=False, next_attempt_at=now, created_at=now)

    # --- send ----------------------------------------------------------------------------------------------

    async def send(self, tenant_id: TenantId, message_id: uuid.UUID) -> AttemptStatus | None:
        """Make one attempt at the message, if it is due and no other attempt is in flight.

        Returns:
            How the attempt ended (``None``: no attempt was due).
        """
        asks: list[Ask] = []
        async with self._sessions() as session, session.begin():
            prepared = await self._start(NotificationRepository(session, tenant_id), message_id, asks)
        await self._enqueue(asks)
        if prepared is None:
            return None
        outcome = await self._transmit(tenant_id, prepared)
        asks = []
        async with self._sessions() as session, session.begin():
            await self._record(NotificationRepository(session, tenant_id), prepared, outcome, asks)
        await self._enqueue(asks)
        return outcome.status

    async def _start(self, repo: NotificationRepository, message_id: uuid.UUID, asks: list[Ask]) -> _Prepared | None:
        message, channel = await repo.locked_message(message_id)
        if message is None or message.state is not MessageState.PENDING:
            return None
        now = self._clock()
        if message.lease_until is not None and message.lease_until > now:
            return None  # an attempt is in flight; its worker records it
        if message.next_attempt_at > now:
            asks.append(Ask("send", message.tenant_id, message.id, not_before=message.next_attempt_at))
            return None
        if channel is None or not channel.enabled or channel.disabled_at is not None:
            return None  # waits: enabling the channel again asks for its messages
        await repo.interrupt_started(message.id, now)
        events = await repo.events_of(message.id)
        if not events:
            message.state = MessageState.FAILED
            return None
        message.attempts += 1
        message.lease_until = now + timedelta(seconds=self.settings.lease_seconds)
        if message.title is None:
            message.title = digest.compose(events).title[:300]
        repo.session.add(NotificationAttempt(tenant_id=message.tenant_id, message_id=message.id, channel_id=channel.id,
                                             number=message.attempts, status=AttemptStatus.STARTED, started_at=now))
        prepared = _Prepared(message.id, message.attempts, channel, events, message.plain_fallback)
        if channel.kind is ChannelKind.WEBHOOK:
            prepared.secrets = [self._key_ring.open(Sealed(secret.key_id, secret.secret_ciphertext),
                                                    secret_associated_data(channel.tenant_id, channel.id))
                                for secret in await repo.active_secrets(channel.id, now)]
        elif channel.kind is ChannelKind.EMAIL:
            prepared.timezone = await repo.timezone()
        return prepared

    async def _transmit(self, tenant_id: TenantId, prepared: _Prepared) -> channels.Outcome:
        channel, events = prepared.channel, prepared.events
        if channel.kind is ChannelKind.GIVENERGY:
            if channel.credential_pinned and channel.credential_id is None:
                return channels.Outcome(AttemptStatus.FAILED,
                                        excerpt="the channel's credential was deleted: no other token is used")
            return await channels.send_givenergy(
                self._upstream, tenant_id, channel.credential_id, digest.for_givenergy(events, plain=prepared.plain),
                max_wait=self.settings.givenergy_max_wait_seconds)
        if channel.kind is ChannelKind.EMAIL:
            plain, markup = digest.email_bodies(events, timezone_name=prepared.timezone)
            mail = channels.email_message(self.settings, list(channel.email_to or []), prepared.message_id,
                                          digest.compose(events).title, plain, markup)
            return await channels.send_email(self.settings, mail)
        return await channels.send_webhook(self.settings, channel.url or "", prepared.secrets,
                                           webhook_id(prepared.message_id), digest.webhook_payload(events[0]),
                                           timestamp=int(time.time()))

    async def _record(self, repo: NotificationRepository, prepared: _Prepared, outcome: channels.Outcome,
                      asks: list[Ask]) -> None:
        message, channel = await repo.locked_message(prepared.message_id)
        attempt = await repo.attempt(prepared.message_id, prepared.number)
        if message is None or attempt is None or channel is None:
            return  # deleted meanwhile (the channel, or the tenant)
        now = self._clock()
        attempt.status, attempt.response_code = outcome.status, outcome.code
        attempt.excerpt, attempt.latency_ms, attempt.finished_at = outcome.excerpt, outcome.latency_ms, now
        if message.state is not MessageState.PENDING or attempt.number != message.attempts:
            return  # a later attempt took over (this one's lease had expired)
        message.lease_until = None
        if outcome.status is AttemptStatus.SUCCEEDED:
            message.state, message.delivered_at = MessageState.DELIVERED, now
            await repo.settle_deliveries(message.id, DeliveryState.DELIVERED)
            channel.consecutive_failures, channel.last_sent_at = 0, now
            if channel.kind is not ChannelKind.WEBHOOK:
                asks.append(Ask("flush", channel.tenant_id, channel.id))
            return
        if outcome.status is AttemptStatus.THROTTLED:
            wait = outcome.retry_after if outcome.retry_after is not None else THROTTLE_FALLBACK_SECONDS
            message.next_attempt_at = now + timedelta(seconds=max(wait, 0.05))
            asks.append(Ask("send", message.tenant_id, message.id, not_before=message.next_attempt_at))
            return
        if outcome.refused_text and not message.plain_fallback:
            message.plain_fallback = True  # GivEnergy's validation moved: the plain text goes at once
            asks.append(Ask("send", message.tenant_id, message.id))
            return
        await self._failed(repo, channel, message, now, asks)

    async def _failed(self, repo: NotificationRepository, channel: NotificationChannel, message: NotificationMessage,
                      now: datetime, asks: list[Ask]) -> None:
        message.failures += 1
        if channel.kind is ChannelKind.WEBHOOK:
            channel.consecutive_failures += 1
            if await self._disable_due(repo, channel, now):
                # The message stays pending: enabling the channel again sends it (and those behind it).
                channel.disabled_at = now
                channel.disabled_reason = f"{channel.consecutive_failures} consecutive failed attempts"
                return
        delay = retry_delay(message.failures, self.settings.webhook_retry_base_seconds, self._rng)
        retry_at = now + timedelta(seconds=delay)
        retrying_since = message.replayed_at or message.created_at
        if retry_at > retrying_since + timedelta(seconds=self.settings.webhook_retry_horizon_seconds):
            await self._give_up(repo, message)
            return
        message.next_attempt_at = retry_at
        asks.append(Ask("send", message.tenant_id, message.id, not_before=retry_at))

    async def _disable_due(self, repo: NotificationRepository, channel: NotificationChannel, now: datetime) -> bool:
        # At least webhook_disable_after failed attempts in a row, the first of them at least
        # webhook_disable_min_span_seconds ago: a burst of events failing together does not disable an endpoint
        # within seconds; an endpoint down through its retries does.
        if channel.consecutive_failures < self.settings.webhook_disable_after:
            return False
        first = await repo.first_failure_since(channel.id, channel.last_sent_at)
        return first is not None and (now - first).total_seconds() >= self.settings.webhook_disable_min_span_seconds

    @staticmethod
    async def _give_up(repo: NotificationRepository, message: NotificationMessage) -> None:
        message.state = MessageState.FAILED
        await repo.settle_deliveries(message.id, DeliveryState.FAILED)

    # --- replay and sweep ----------------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Ask again for everything no job may be carrying: unrouted events, due deliveries without a message,
        due messages and messages whose attempt's lease expired (a dead worker). Returns how many asks."""
        async with self._sessions() as session:
            found = await backlog(session, self._clock())
        asks = [Ask("relay", tenant) for tenant in found.relay]
        asks += [Ask("flush", tenant, channel) for tenant, channel in found.flush]
        asks += [Ask("send", tenant, message) for tenant, message in found.send]
        await self._enqueue(asks)
        return len(asks)

