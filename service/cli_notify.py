"""``givfleet notify``: a tenant's notification channels, and a test send that reports how it went."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from service.cli_access import TenantOption, console, principal_of_tenant, run_op, when
from service.core.principal import Principal
from service.db.models.notifications import NotificationAttempt, NotificationChannel
from service.db.uow import read_session
from service.jobs.enqueue import unit_of_work
from service.notifications.jobs import build_notifier
from service.notifications.service import NotificationService
from service.runtime import Resources
from service.tenants.crypto import load_key_ring

notify_app = typer.Typer(help="Notification channels of a tenant.", no_args_is_help=True)


def _service(resources: Resources, session: AsyncSession, principal: Principal) -> NotificationService:
    return NotificationService(session, principal, load_key_ring(resources.settings), resources.settings.notifications)


async def list_channels_op(resources: Resources, slug: str) -> list[NotificationChannel]:
    """The tenant's channels."""
    async with read_session(resources.session_factory) as session:
        return list(await _service(resources, session, await principal_of_tenant(session, slug)).channels())


async def send_test_op(resources: Resources, slug: str, channel: str) -> list[NotificationAttempt]:
    """Send a test notification to a channel (by name or id) from this process; the attempts it took."""
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        principal = await principal_of_tenant(session, slug)
        target = await _service(resources, session, principal).find_channel(channel)
        event_id = await _service(resources, session, principal).test_send(target.id)
    notifier = build_notifier(resources)
    await notifier.flush(principal.tenant_id, target.id)
    async with read_session(resources.session_factory) as session:
        message = await _service(resources, session, principal).message_of(event_id, target.id)
    if message is None:  # held back: the channel is disabled
        return []
    await notifier.send(principal.tenant_id, message.id)
    async with read_session(resources.session_factory) as session:
        entries = await _service(resources, session, principal).log(channel_id=target.id, limit=200)
    return next((entry.attempts for entry in entries if entry.message.id == message.id), [])


@notify_app.command("channels")
def notify_channels(tenant: TenantOption) -> None:
    """List a tenant's notification channels."""
    channels = run_op(lambda resources: list_channels_op(resources, tenant))
    table = Table("name", "kind", "target", "enabled", "disabled", "last sent", "id")
    for channel in channels:
        target = channel.url or ", ".join(channel.email_to or []) or str(channel.credential_id or "best token")
        table.add_row(channel.name, channel.kind.value, target, "yes" if channel.enabled else "no",
                      channel.disabled_reason or "-", when(channel.last_sent_at), str(channel.id))
    console.print(table)


@notify_app.command("test")
def notify_test(
    tenant: TenantOption,
    channel: Annotated[str, typer.Option("--channel", "-c", help="Channel name or id.")],
) -> None:
    """Send a test notification to a channel now and show how it went (exit 1 when it was not delivered)."""
    attempts = run_op(lambda resources: send_test_op(resources, tenant, channel))
    if not attempts:
        console.print("not sent: the channel is disabled", highlight=False)
        raise typer.Exit(1)
    for attempt in attempts:
        console.print(f"attempt {attempt.number}: {attempt.status.value}"
                      f"{f' ({attempt.response_code})' if attempt.response_code else ''}"
                      f"{f': {attempt.excerpt}' if attempt.excerpt else ''}", highlight=False)
    if attempts[-1].status.value != "succeeded":
        raise typer.Exit(1)
