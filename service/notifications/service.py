"""Managing a tenant's notifications: channels, webhook secrets, rules, quiet hours, the delivery log, replay and
test sends. Every method starts with the policy check; the caller's unit of work commits (and then enqueues what
the method deferred)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import time, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.clock import utcnow
from service.core.errors import ConflictError, InvalidInputError, NotFoundError
from service.core.principal import Principal
from service.core.text import plain_field
from service.db.models.monitoring import Severity
from service.db.models.notifications import (
    ChannelKind,
    DeliveryState,
    MessageState,
    NotificationAttempt,
    NotificationChannel,
    NotificationEventType,
    NotificationMessage,
    NotificationRule,
    WebhookSecret,
)
from service.db.uow import defer_job
from service.notifications.addresses import UnsafeTargetError, check_new_target
from service.notifications.delivery import Ask, secret_associated_data
from service.notifications.jobs import call_of
from service.notifications.outbox import record_event
from service.notifications.repository import NotificationRepository
from service.notifications.signing import new_secret
from service.policy import Action, authorize
from service.settings import NotificationSettings
from service.tenants.crypto import KeyRing
from service.tenants.repository import CredentialRepository
from service.tenants.service import AuditService

MAX_RECIPIENTS = 20
LOG_PAGE = 200


MAX_DIGEST_INTERVAL = 7 * 86400
"""The longest digest interval, in seconds (a week)."""

@dataclass(frozen=True)
class ChannelSpec:
    """A new channel: its kind, a unique name, and the kind's target.

    Attributes:
        url: Webhook: the endpoint (http or https).
        email_to: E-mail: the recipients.
        credential_id: GivEnergy: the credential whose account is told (``None``: the tenant's best).
        digest_interval_seconds: Least time between two digests (GivEnergy, e-mail).
        quiet_start: Start of quiet hours, tenant-local (with ``quiet_end``).
        quiet_end: End of quiet hours, tenant-local.
    """

    kind: ChannelKind
    name: str
    url: str | None = None
    email_to: tuple[str, ...] = ()
    credential_id: uuid.UUID | None = None
    digest_interval_seconds: int = 0
    quiet_start: time | None = None
    quiet_end: time | None = None


@dataclass(frozen=True)
class CreatedChannel:
    """A new channel, and its webhook secret (shown this once, never again)."""

    channel: NotificationChannel
    secret: str | None


@dataclass(frozen=True)
class LogEntry:
    """A message of the delivery log with its attempts."""

    message: NotificationMessage
    attempts: list[NotificationAttempt]


class NotificationService:
    """A tenant's notification settings and delivery log (see the module docstring).

    Args:
        session: The caller's unit of work.
        principal: Who asks.
        key_ring: Seals webhook secrets.
        settings: The ``notifications`` settings (the SSRF guard's allowed networks, the rotation overlap).
    """

    def __init__(self, session: AsyncSession, principal: Principal, key_ring: KeyRing,
                 settings: NotificationSettings) -> None:
        self._session = session
        self._principal = principal
        self._key_ring = key_ring
        self._settings = settings
        self._repo = NotificationRepository(session, principal.tenant_id)
        self._audit = AuditService(session)

    # --- channels ------------------------------------------------------------------------------------------

    async def channels(self) -> Sequence[NotificationChannel]:
        """The tenant's channels."""
        authorize(self._principal, Action.NOTIFICATION_READ)
        return await self._repo.channels()

    async def create_channel(self, spec: ChannelSpec) -> CreatedChannel:
        """Add a channel (a webhook gets a signing secret, returned this once).

        Raises:
            InvalidInputError: The target does not fit the kind (a GivEnergy channel's credential is not the
                tenant's; a webhook's host is, or resolves now to, an address the SSRF guard refuses), or the
                quiet hours are half given.
            ConflictError: A channel with this name exists.
        """
        authorize(self._principal, Action.NOTIFICATION_MANAGE)
        name = plain_field(spec.name.strip(), "name")
        if not name or len(name) > 200:
            raise InvalidInputError("a channel needs a name of 1 to 200 characters", field="name")
        await self._check_target(spec)
        if spec.kind is ChannelKind.GIVENERGY and spec.credential_id is not None and await CredentialRepository(
                self._session, self._principal.tenant_id).get(spec.credential_id) is None:
            raise InvalidInputError("no credential of this tenant has this id", field="credential_id")
        _check_quiet(spec.quiet_start, spec.quiet_end)
        _check_interval(spec.digest_interval_seconds)
        channel = NotificationChannel(
            id=uuid.uuid4(), tenant_id=self._principal.tenant_id, kind=spec.kind, name=name, enabled=True,
            url=spec.url if spec.kind is ChannelKind.WEBHOOK else None,
            email_to=list(spec.email_to) if spec.kind is ChannelKind.EMAIL else None,
            credential_id=spec.credential_id if spec.kind is ChannelKind.GIVENERGY else None,
            credential_pinned=spec.kind is ChannelKind.GIVENERGY and spec.credential_id is not None,
            digest_interval_seconds=spec.digest_interval_seconds, quiet_start=spec.quiet_start,
            quiet_end=spec.quiet_end, consecutive_failures=0, created_at=utcnow())  # fmt: skip
        try:
            async with self._session.begin_nested():
                self._session.add(channel)
                await self._session.flush()
        except IntegrityError:
            raise ConflictError(f"a channel named {name!r} exists", field="name") from None
        secret = self._add_secret(channel) if spec.kind is ChannelKind.WEBHOOK else None
        await self._audit.record(self._principal, "notification.channel.create", target_type="notification_channel",
                                 target_id=channel.id, details={"kind": spec.kind.value, "name": name})
        return CreatedChannel(channel, secret)

    async def _check_target(self, spec: ChannelSpec) -> None:
        if spec.kind is ChannelKind.WEBHOOK:
            try:
                await check_new_target(plain_field(spec.url or "", "url"), self._settings.webhook_allowed_networks)
            except UnsafeTargetError as exc:
                raise InvalidInputError(str(exc), field="url") from None
        elif spec.kind is ChannelKind.EMAIL:
            if not spec.email_to or len(spec.email_to) > MAX_RECIPIENTS:
                raise InvalidInputError(f"an e-mail channel has 1 to {MAX_RECIPIENTS} recipients", field="email_to")
            bad = [address for address in spec.email_to if "@" not in address or len(address) > 320
                   or any(c.isspace() or c in "<>,;" or not c.isprintable() for c in address)]
            if bad:
                raise InvalidInputError(f"not an e-mail address: {bad[0]!r}", field="email_to")

    def _add_secret(self, channel: NotificationChannel) -> str:
        secret = new_secret()
        sealed = self._key_ring.seal(secret, secret_associated_data(channel.tenant_id, channel.id))
        self._session.add(WebhookSecret(tenant_id=channel.tenant_id, channel_id=channel.id,
                                        secret_ciphertext=sealed.blob, key_id=sealed.key_id, created_at=utcnow()))
        return secret

    async def rotate_secret(self, channel_id: uuid.UUID) -> str:
        """A new signing secret for a webhook (returned this once); the previous one keeps signing too for
        ``webhook_rotation_overlap_seconds``, so receivers can switch without losing a delivery."""
        authorize(self._principal, Action.NOTIFICATION_MANAGE)
        channel = await self._channel(channel_id, lock=True)
        if channel.kind is not ChannelKind.WEBHOOK:
            raise InvalidInputError("only webhooks have signing secrets", field="channel_id")
        now = utcnow()
        overlap = now + timedelta(seconds=self._settings.webhook_rotation_overlap_seconds)
        for old in await self._repo.active_secrets(channel.id, now):
            old.expires_at = min(old.expires_at or overlap, overlap)
        secret = self._add_secret(channel)
        await self._audit.record(self._principal, "notification.secret.rotate", target_type="notification_channel",
                                 target_id=channel.id)
        return secret

    async def update_channel(self, channel_id: uuid.UUID, *, enabled: bool | None = None,
                             digest_interval_seconds: int | None = None, quiet_start: time | None = None,
                             quiet_end: time | None = None, clear_quiet_hours: bool = False) -> NotificationChannel:
        """Enable or disable a channel, set its digest interval or quiet hours. Enabling clears an automatic
        disable and asks for what waited meanwhile."""
        authorize(self._principal, Action.NOTIFICATION_MANAGE)
        channel = await self._channel(channel_id, lock=True)
        if enabled is not None:
            channel.enabled = enabled
            if enabled:
                channel.disabled_at, channel.disabled_reason, channel.consecutive_failures = None, None, 0
                self._ask(Ask("flush", channel.tenant_id, channel.id))
                message = await self._repo.open_message(channel.id)
                if message is not None:
                    self._ask(Ask("send", channel.tenant_id, message.id))
        if digest_interval_seconds is not None:
            _check_interval(digest_interval_seconds)
            channel.digest_interval_seconds = digest_interval_seconds
        if clear_quiet_hours:
            channel.quiet_start = channel.quiet_end = None
        elif quiet_start is not None or quiet_end is not None:
            _check_quiet(quiet_start, quiet_end)
            channel.quiet_start, channel.quiet_end = quiet_start, quiet_end
        await self._audit.record(self._principal, "notification.channel.update", target_type="notification_channel",
                                 target_id=channel.id, details={"enabled": channel.enabled})
        return channel

    async def delete_channel(self, channel_id: uuid.UUID) -> None:
        """Remove a channel with its rules, secrets and log."""
        authorize(self._principal, Action.NOTIFICATION_MANAGE)
        channel = await self._channel(channel_id, lock=True)
        await self._session.delete(channel)
        await self._audit.record(self._principal, "notification.channel.delete", target_type="notification_channel",
                                 target_id=channel_id)

    async def find_channel(self, name_or_id: str) -> NotificationChannel:
        """A channel by id or by name.

        Raises:
            NotFoundError: No channel has this id or name.
        """
        authorize(self._principal, Action.NOTIFICATION_READ)
        for channel in await self._repo.channels():
            if name_or_id in (str(channel.id), channel.name):
                return channel
        raise NotFoundError(f"no notification channel is named {name_or_id!r}")

    async def _channel(self, channel_id: uuid.UUID, *, lock: bool = False) -> NotificationChannel:
        channel = await self._repo.channel(channel_id, lock=lock)
        if channel is None:
            raise NotFoundError("no such notification channel")
        return channel

    # --- rules ---------------------------------------------------------------------------------------------

    async def rules(self) -> Sequence[NotificationRule]:
        """The tenant's routing rules."""
        authorize(self._principal, Action.NOTIFICATION_READ)
        return await self._repo.rules()

    async def add_rule(self, channel_id: uuid.UUID, event_types: Sequence[str],
                       min_severity: Severity | None) -> NotificationRule:
        """Send events of these types (none: every type) at or above ``min_severity`` to a channel."""
        authorize(self._principal, Action.NOTIFICATION_MANAGE)
        await self._channel(channel_id)
        known = {kind.value for kind in NotificationEventType}
        unknown = sorted(set(event_types) - known)
        if unknown:
            raise InvalidInputError(f"unknown event type(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})",
                                    field="event_types")
        rule = NotificationRule(id=uuid.uuid4(), tenant_id=self._principal.tenant_id, channel_id=channel_id,
                                event_types=sorted(set(event_types)), min_severity=min_severity, enabled=True,
                                created_at=utcnow())
        self._session.add(rule)
        await self._session.flush()
        await self._audit.record(self._principal, "notification.rule.create", target_type="notification_rule",
                                 target_id=rule.id, details={"channel_id": str(channel_id)})
        return rule

    async def delete_rule(self, rule_id: uuid.UUID) -> None:
        """Remove a rule."""
        authorize(self._principal, Action.NOTIFICATION_MANAGE)
        rule = await self._repo.rule(rule_id)
        if rule is None:
            raise NotFoundError("no such notification rule")
        await self._session.delete(rule)
        await self._audit.record(self._principal, "notification.rule.delete", target_type="notification_rule",
                                 target_id=rule_id)

    # --- log, replay, test ---------------------------------------------------------------------------------

    async def log(self, *, channel_id: uuid.UUID | None = None, limit: int = 50) -> list[LogEntry]:
        """The delivery log: the newest messages (at most ``limit``, up to 200) with their attempts."""
        authorize(self._principal, Action.NOTIFICATION_READ)
        if not 1 <= limit <= LOG_PAGE:
            raise InvalidInputError(f"limit is 1 to {LOG_PAGE}", field="limit")
        messages = await self._repo.messages(channel_id=channel_id, limit=limit)
        attempts = await self._repo.attempts_of([m.id for m in messages])
        return [LogEntry(m, [a for a in attempts if a.message_id == m.id]) for m in messages]

    async def message_of(self, event_id: uuid.UUID, channel_id: uuid.UUID) -> NotificationMessage | None:
        """The message carrying an event to a channel (``None``: not packed yet)."""
        authorize(self._principal, Action.NOTIFICATION_READ)
        return await self._repo.message_of(event_id, channel_id)

    async def replay(self, message_id: uuid.UUID) -> NotificationMessage:
        """Send a message again, as it was, with the same id (any message: delivered, failed or waiting)."""
        authorize(self._principal, Action.NOTIFICATION_REPLAY)
        message = await self._repo.message(message_id, lock=True)
        if message is None:
            raise NotFoundError("no such notification message")
        if message.lease_until is not None and message.lease_until > utcnow():
            raise ConflictError("an attempt of this message is in flight")
        now = utcnow()
        message.state, message.failures, message.next_attempt_at, message.replayed_at = (
            MessageState.PENDING, 0, now, now)
        await self._repo.settle_deliveries(message.id, DeliveryState.QUEUED)
        self._ask(Ask("send", message.tenant_id, message.id))
        await self._audit.record(self._principal, "notification.message.replay", target_type="notification_message",
                                 target_id=message.id)
        return message

    async def test_send(self, channel_id: uuid.UUID) -> uuid.UUID:
        """Send a test event to one channel now (whatever the rules and quiet hours say); returns the event id."""
        authorize(self._principal, Action.NOTIFICATION_TEST)
        channel = await self._channel(channel_id)
        now = utcnow()
        key = f"test:{uuid.uuid4()}"
        await record_event(self._session, channel.tenant_id, NotificationEventType.TEST, key,
                           f"Test notification for channel {channel.name}", severity=Severity.INFO, now=now)
        event_id = await self._repo.claim_test_event(key, now)
        await self._repo.add_deliveries([(event_id, channel.id, None)], now)
        self._ask(Ask("flush", channel.tenant_id, channel.id))
        await self._audit.record(self._principal, "notification.test", target_type="notification_channel",
                                 target_id=channel.id)
        return event_id

    def _ask(self, ask: Ask) -> None:
        defer_job(self._session, call_of(ask))


def _check_interval(seconds: int) -> None:
    if not 0 <= seconds <= MAX_DIGEST_INTERVAL:
        raise InvalidInputError(f"the digest interval is 0 to {MAX_DIGEST_INTERVAL} seconds",
                                field="digest_interval_seconds")


def _check_quiet(start: time | None, end: time | None) -> None:
    if (start is None) != (end is None):
        raise InvalidInputError("quiet hours need both a start and an end", field="quiet_start")
    if start is not None and start == end:
        raise InvalidInputError("quiet hours start and end at different times", field="quiet_end")
