# mypy: disable-error-code="untyped-decorator"
"""``notificationChannels``, ``notificationRules``, ``notificationLog`` (operator, whole-tenant keys)."""

from __future__ import annotations

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from service.gql.context import Info
from service.gql.mutation import parse_id, resources_of
from service.gql.notifications.types import NotificationChannel, NotificationMessage, NotificationRule
from service.notifications.service import NotificationService
from service.tenants.crypto import load_key_ring


def service_of(info: Info, session: AsyncSession) -> NotificationService:
    """The notification service for the request's principal on ``session``."""
    resources = resources_of(info)
    return NotificationService(session, info.context.principal, load_key_ring(resources.settings),
                               resources.settings.notifications)


@strawberry.type
class NotificationQuery:
    @strawberry.field(description="The tenant's notification channels.")
    async def notification_channels(self, info: Info) -> list[NotificationChannel]:
        async with info.context.session_factory() as session:
            return [NotificationChannel.from_row(c) for c in await service_of(info, session).channels()]

    @strawberry.field(description="The tenant's routing rules.")
    async def notification_rules(self, info: Info) -> list[NotificationRule]:
        async with info.context.session_factory() as session:
            return [NotificationRule.from_row(r) for r in await service_of(info, session).rules()]

    @strawberry.field(description="The delivery log: newest messages first (at most 200), with their attempts.")
    async def notification_log(self, info: Info, channel_id: strawberry.ID | None = None,
                               first: int = 50) -> list[NotificationMessage]:
        channel = parse_id(channel_id, "channelId") if channel_id is not None else None
        async with info.context.session_factory() as session:
            entries = await service_of(info, session).log(channel_id=channel, limit=first)
        return [NotificationMessage.from_row(entry.message, entry) for entry in entries]


__all__ = ["NotificationQuery", "service_of"]
