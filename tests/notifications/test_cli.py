"""``givfleet notify test``: a test notification sent from the command line, each attempt reported."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.cli_notify import list_channels_op, send_test_op
from service.core.errors import NotFoundError
from service.db.models.notifications import AttemptStatus, ChannelKind
from service.db.models.tenant import Tenant
from service.notifications.service import ChannelSpec
from service.runtime import Resources
from tests.notifications.conftest import Harness, Receiver, loopback_settings


@pytest.fixture
def loopback_allowed(resources: Resources) -> Iterator[None]:
    """The process's settings let webhooks reach the loopback receiver for the test."""
    kept = resources.settings.notifications
    resources.settings.notifications = loopback_settings()
    try:
        yield
    finally:
        resources.settings.notifications = kept


@pytest.mark.usefixtures("loopback_allowed")
async def test_a_test_send_reaches_the_webhook_and_reports_its_attempt(harness: Harness, receiver: Receiver) -> None:
    await harness.manage(lambda s: s.create_channel(ChannelSpec(ChannelKind.WEBHOOK, "ops", url=receiver.url)))
    async with harness.resources.session_factory() as session:
        tenant = await session.get(Tenant, harness.tenant_id)
    assert tenant is not None

    attempts = (await send_test_op(harness.resources, tenant.slug, "ops")).attempts

    assert [(a.number, a.status, a.response_code) for a in attempts] == [(1, AttemptStatus.SUCCEEDED, 204)]
    assert len(receiver.received) == 1
    assert [c.name for c in await list_channels_op(harness.resources, tenant.slug)] == ["ops"]
    with pytest.raises(NotFoundError):
        await send_test_op(harness.resources, tenant.slug, "nope")


async def test_a_test_send_that_sends_nothing_says_why(harness: Harness) -> None:
    created = await harness.manage(lambda s: s.create_channel(ChannelSpec(ChannelKind.GIVENERGY, "phone")))
    await harness.manage(lambda s: s.update_channel(created.channel.id, enabled=False))
    async with harness.resources.session_factory() as session:
        tenant = await session.get(Tenant, harness.tenant_id)
    assert tenant is not None

    result = await send_test_op(harness.resources, tenant.slug, "phone")

    assert result.attempts == []
    assert result.not_sent == "the channel is switched off (enable it to send)"


async def test_an_email_test_send_without_smtp_names_the_variable_to_set(harness: Harness) -> None:
    # An e-mail channel is accepted with no SMTP server (it may be configured later, for the whole deployment);
    # its sends then say which variable to set.
    assert harness.resources.settings.notifications.smtp_host is None
    await harness.manage(lambda s: s.create_channel(ChannelSpec(ChannelKind.EMAIL, "mail", email_to=("a@b.example",))))
    async with harness.resources.session_factory() as session:
        tenant = await session.get(Tenant, harness.tenant_id)
    assert tenant is not None

    attempts = (await send_test_op(harness.resources, tenant.slug, "mail")).attempts

    assert [(a.status, a.excerpt) for a in attempts] == [
        (AttemptStatus.FAILED, "no SMTP server is configured: set GIVFLEET_NOTIFICATIONS__SMTP_HOST")]
