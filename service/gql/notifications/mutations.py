# mypy: disable-error-code="untyped-decorator"
"""Manage channels and rules (admin), replay a message and send a test (operator); whole-tenant keys only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

import strawberry

from service.db.models.monitoring import Severity
from service.db.models.notifications import ChannelKind
from service.db.uow import UnitOfWork
from service.gql.context import Info
from service.gql.mutation import MutationPayload, parse_id
from service.gql.notifications.queries import service_of
from service.gql.notifications.types import NotificationChannel, NotificationMessage, NotificationRule
from service.notifications.service import ChannelSpec, NotificationService


@strawberry.input(description="A new channel: url for a webhook, emailTo for e-mail, credentialId for GivEnergy "
                              "(none: the tenant's best token).")
class NotificationChannelInput:
    kind: ChannelKind
    name: str
    url: str | None = None
    email_to: list[str] | None = None
    credential_id: strawberry.ID | None = None
    digest_interval_seconds: int = 0
    quiet_start: dt.time | None = None
    quiet_end: dt.time | None = None


@strawberry.input(description="Changes to a channel (enabled: true also re-enables a disabled webhook).")
class NotificationChannelUpdate:
    enabled: bool | None = None
    digest_interval_seconds: int | None = None
    quiet_start: dt.time | None = None
    quiet_end: dt.time | None = None
    clear_quiet_hours: bool = False


@strawberry.type(description="The channel created, and a webhook's signing secret: shown this once.")
class CreateNotificationChannelPayload(MutationPayload):
    channel: NotificationChannel | None = None
    secret: str | None = None


@strawberry.type(description="The channel after the change.")
class NotificationChannelPayload(MutationPayload):
    channel: NotificationChannel | None = None


@strawberry.type(description="A webhook's new signing secret: shown this once.")
class WebhookSecretPayload(MutationPayload):
    secret: str | None = None


@strawberry.type(description="The rule created.")
class NotificationRulePayload(MutationPayload):
    rule: NotificationRule | None = None


@strawberry.type(description="The message queued again.")
class NotificationMessagePayload(MutationPayload):
    message: NotificationMessage | None = None


@strawberry.type(description="Whether it happened.")
class NotificationDonePayload(MutationPayload):
    ok: bool = False


async def _done(info: Info, act: Callable[[NotificationService], Awaitable[object]]) -> NotificationDonePayload:
    """``ok: true`` once ``act`` has run on the notification service in the mutation's unit of work."""

    async def work(session: UnitOfWork) -> NotificationDonePayload:
        await act(service_of(info, session))
        return NotificationDonePayload(ok=True)

    return await NotificationDonePayload.of_work(info, work)


@strawberry.type
class NotificationMutation:
    @strawberry.mutation(description="Add a notification channel (admin).")
    async def create_notification_channel(self, info: Info, input: NotificationChannelInput
                                          ) -> CreateNotificationChannelPayload:
        async def work(session: UnitOfWork) -> CreateNotificationChannelPayload:
            created = await service_of(info, session).create_channel(ChannelSpec(
                kind=input.kind, name=input.name, url=input.url, email_to=tuple(input.email_to or ()),
                credential_id=parse_id(input.credential_id, "credentialId") if input.credential_id else None,
                digest_interval_seconds=input.digest_interval_seconds, quiet_start=input.quiet_start,
                quiet_end=input.quiet_end))
            return CreateNotificationChannelPayload(channel=NotificationChannel.from_row(created.channel),
                                                    secret=created.secret)

        return await CreateNotificationChannelPayload.of_work(info, work)

    @strawberry.mutation(description="Enable or disable a channel, set its digest interval or quiet hours (admin).")
    async def update_notification_channel(self, info: Info, id: strawberry.ID, input: NotificationChannelUpdate
                                          ) -> NotificationChannelPayload:
        async def work(session: UnitOfWork) -> NotificationChannelPayload:
            channel = await service_of(info, session).update_channel(
                parse_id(id), enabled=input.enabled, digest_interval_seconds=input.digest_interval_seconds,
                quiet_start=input.quiet_start, quiet_end=input.quiet_end,
                clear_quiet_hours=input.clear_quiet_hours)
            return NotificationChannelPayload(channel=NotificationChannel.from_row(channel))

        return await NotificationChannelPayload.of_work(info, work)

    @strawberry.mutation(description="Remove a channel with its rules and log (admin).")
    async def delete_notification_channel(self, info: Info, id: strawberry.ID) -> NotificationDonePayload:
        return await _done(info, lambda service: service.delete_channel(parse_id(id)))

    @strawberry.mutation(description="A new webhook signing secret; the old one signs too during the overlap "
                                     "(admin).")
    async def rotate_webhook_secret(self, info: Info, id: strawberry.ID) -> WebhookSecretPayload:
        async def work(session: UnitOfWork) -> WebhookSecretPayload:
            return WebhookSecretPayload(secret=await service_of(info, session).rotate_secret(parse_id(id)))

        return await WebhookSecretPayload.of_work(info, work)

    @strawberry.mutation(description="Route events of these types (empty: all) at or above a severity to a channel "
                                     "(admin).")
    async def create_notification_rule(self, info: Info, channel_id: strawberry.ID,
                                       event_types: list[str] | None = None,
                                       min_severity: Severity | None = None) -> NotificationRulePayload:
        async def work(session: UnitOfWork) -> NotificationRulePayload:
            rule = await service_of(info, session).add_rule(parse_id(channel_id, "channelId"),
                                                            event_types or [], min_severity)
            return NotificationRulePayload(rule=NotificationRule.from_row(rule))

        return await NotificationRulePayload.of_work(info, work)

    @strawberry.mutation(description="Remove a routing rule (admin).")
    async def delete_notification_rule(self, info: Info, id: strawberry.ID) -> NotificationDonePayload:
        return await _done(info, lambda service: service.delete_rule(parse_id(id)))

    @strawberry.mutation(description="Send a message again with the same id (operator).")
    async def replay_notification(self, info: Info, id: strawberry.ID) -> NotificationMessagePayload:
        async def work(session: UnitOfWork) -> NotificationMessagePayload:
            message = await service_of(info, session).replay(parse_id(id))
            return NotificationMessagePayload(message=NotificationMessage.from_row(message))

        return await NotificationMessagePayload.of_work(info, work)

    @strawberry.mutation(description="Send a test notification to a channel (operator).")
    async def send_test_notification(self, info: Info, channel_id: strawberry.ID) -> NotificationDonePayload:
        return await _done(info, lambda service: service.test_send(parse_id(channel_id, "channelId")))


__all__ = ["NotificationMutation"]
