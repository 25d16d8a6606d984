"""``givfleet notify``: a tenant's notification channels, and a test send that reports how it went."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from service.cli_access import TenantOption, console, principal_of_tenant, run_op, when
from service.core.principal import Principal
from service.core.tables import TextTable, print_table
from service.db.models.notifications import NotificationAttempt, NotificationChannel, NotificationMessage
from service.db.uow import read_session
from service.jobs.enqueue import unit_of_work
from service.notifications.jobs import build_notifier
from service.notifications.repository import NotificationRepository
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


@dataclass(frozen=True)
class TestSend:
    """How a test send went: its message's attempts, or why nothing was sent."""

    attempts: list[NotificationAttempt]
    not_sent: str | None = None


def _held_back(channel: NotificationChannel, message: NotificationMessage | None) -> str:
    if not channel.enabled:
        return "the channel is switched off (enable it to send)"
    if channel.disabled_at is not None:
        return f"the channel was disabled ({channel.disabled_reason}); enable it again to resume"
    if message is None:
        return "the channel's digest interval has not passed since its last message: the test goes in the next one"
    return f"its message waits for its next attempt, due {when(message.next_attempt_at)}"


async def send_test_op(resources: Resources, slug: str, channel: str) -> TestSend:
    """Send a test notification to a channel (by name or id) from this process; the attempts it took."""
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        principal = await principal_of_tenant(session, slug)
        service = _service(resources, session, principal)
        target = await service.find_channel(channel)
        event_id = await service.test_send(target.id)
    notifier = build_notifier(resources)
    await notifier.flush(principal.tenant_id, target.id)
    async with read_session(resources.session_factory) as session:
        message = await _service(resources, session, principal).message_of(event_id, target.id)
    if message is not None:  # a webhook's flush made the first attempt already; a digest's is made here
        await notifier.send(principal.tenant_id, message.id)
        async with read_session(resources.session_factory) as session:
            attempts = list(await NotificationRepository(session, principal.tenant_id).attempts_of([message.id]))
        if attempts:
            return TestSend(attempts)
    return TestSend([], _held_back(target, message))


@notify_app.command("channels")
def notify_channels(tenant: TenantOption) -> None:
    """List a tenant's notification channels."""
    channels = run_op(lambda resources: list_channels_op(resources, tenant))
    table = TextTable("name", "kind", "target", "enabled", "disabled", "last sent", "id")
    for channel in channels:
        target = channel.url or ", ".join(channel.email_to or []) or str(channel.credential_id or "best token")
        table.add_row(channel.name, channel.kind.value, target, "yes" if channel.enabled else "no",
                      channel.disabled_reason or "-", when(channel.last_sent_at), str(channel.id))
    print_table(console, table)


@notify_app.command("test")
def notify_test(
    tenant: TenantOption,
    channel: Annotated[str, typer.Option("--channel", "-c", help="Channel name or id.")],
) -> None:
    """Send a test notification to a channel now and show how it went (exit 1 when it was not delivered)."""
    result = run_op(lambda resources: send_test_op(resources, tenant, channel))
    attempts = result.attempts
    if not attempts:
        console.print(f"not sent: {result.not_sent}", markup=False, highlight=False)
        raise typer.Exit(1)
    for attempt in attempts:
        console.print(f"attempt {attempt.number}: {attempt.status.value}"
                      f"{f' ({attempt.response_code})' if attempt.response_code else ''}"
                      f"{f': {attempt.excerpt}' if attempt.excerpt else ''}", markup=False, highlight=False)
    if attempts[-1].status.value != "succeeded":
        raise typer.Exit(1)
