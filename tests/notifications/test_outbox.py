"""The domains write their events to the outbox in the transaction of the change: campaigns finishing, aborting or
awaiting approval, failed syncs, credentials turning unhealthy."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from service.campaigns.steps import system_principal, transition
from service.core.tenancy import TenantId
from service.db.models.campaign import Campaign, CampaignState
from service.db.models.credential import CredentialHealth, CredentialKind, UpstreamCredential
from service.db.models.mirror import SyncKind, SyncState
from service.db.models.monitoring import Severity
from service.db.models.notifications import NotificationEvent, NotificationEventType
from service.mirror.runner import SyncRunner
from service.notifications.outbox import note_unhealthy
from service.runtime import Resources
from tests.campaigns.factories import fresh_campaign


async def events(resources: Resources) -> list[tuple[NotificationEventType, Severity | None, str]]:
    async with resources.session_factory() as session:
        rows = (await session.scalars(select(NotificationEvent).order_by(NotificationEvent.created_at))).all()
    return [(row.type, row.severity, row.summary) for row in rows]


async def test_a_campaign_completing_or_aborting_writes_its_event_with_the_transition(
        resources: Resources, tenant_id: TenantId) -> None:
    done = await fresh_campaign(resources, tenant_id, CampaignState.RUNNING)
    stopped = await fresh_campaign(resources, tenant_id, CampaignState.RUNNING)
    async with resources.session_factory() as session, session.begin():
        for campaign_id, action in ((done, "complete"), (stopped, "abort")):
            campaign = await session.get(Campaign, campaign_id)
            assert campaign is not None
            await transition(session, system_principal(tenant_id), campaign, action,
                             reason="too many failures" if action == "abort" else None)
    assert await events(resources) == [
        (NotificationEventType.CAMPAIGN_FINISHED, Severity.INFO, "campaign matrix finished"),
        (NotificationEventType.CAMPAIGN_ABORTED, Severity.MAJOR, "campaign matrix aborted: too many failures")]


async def test_a_failed_sync_writes_sync_failed(resources: Resources, tenant_id: TenantId) -> None:
    async def no_credential(*_: Any) -> Any:
        raise RuntimeError("no token at all")

    outcome = await SyncRunner(resources.engine, resources.session_factory, no_credential).run(
        tenant_id, SyncKind.FULL)
    assert outcome.state is SyncState.FAILED
    ((kind, severity, summary),) = await events(resources)
    assert (kind, severity) == (NotificationEventType.SYNC_FAILED, Severity.MAJOR)
    assert "no token at all" in summary


async def test_a_usable_credential_found_unhealthy_writes_one_event(resources: Resources,
                                                                    tenant_id: TenantId) -> None:
    async with resources.session_factory() as session, session.begin():
        credential = UpstreamCredential(tenant_id=tenant_id, label="main", kind=CredentialKind.API_TOKEN,
                                        health=CredentialHealth.OK, scopes=[], secret_ciphertext=b"x", key_id="k")
        session.add(credential)
        await session.flush()
        await note_unhealthy(session, credential, CredentialHealth.UNAUTHORISED)
        credential.health = CredentialHealth.UNAUTHORISED
        await note_unhealthy(session, credential, CredentialHealth.NO_SUBSCRIPTION)  # already unusable
        await note_unhealthy(session, credential, CredentialHealth.OK)
    assert await events(resources) == [
        (NotificationEventType.CREDENTIAL_UNHEALTHY, Severity.CRITICAL, "GivEnergy credential main is unauthorised")]
