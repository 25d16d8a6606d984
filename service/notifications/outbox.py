"""The outbox's write side: other domains record events here, in the transaction of the change that caused them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.clock import utcnow
from service.db.models.credential import CredentialHealth, UpstreamCredential
from service.db.models.monitoring import Severity
from service.db.models.notifications import NotificationEvent, NotificationEventType
from service.tenants.choice import USABLE_HEALTH


async def record_event(session: AsyncSession, tenant_id: uuid.UUID, kind: NotificationEventType, key: str,
                       summary: str, *, severity: Severity | None = None, campaign_id: uuid.UUID | None = None,
                       credential_id: uuid.UUID | None = None, inverter_serial: str | None = None,
                       site_upstream_id: int | None = None, now: datetime | None = None) -> None:
    """Add an event to the outbox on ``session`` (committed, or rolled back, with the caller's change).

    Args:
        key: The event's idempotency key, unique per tenant: recording the same key again adds nothing.
        summary: One line for people (truncated to 500 characters).
    """
    await session.execute(insert(NotificationEvent).values(
        id=uuid.uuid4(), tenant_id=tenant_id, type=kind, idempotency_key=key[:200], summary=summary[:500],
        severity=severity, campaign_id=campaign_id, credential_id=credential_id, inverter_serial=inverter_serial,
        site_upstream_id=site_upstream_id, notify=True, created_at=now or utcnow(),
    ).on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"]))  # fmt: skip


async def note_unhealthy(session: AsyncSession, credential: UpstreamCredential, health: CredentialHealth) -> None:
    """Record ``credential.unhealthy`` when a usable credential (healthy or unchecked) is found ``health``,
    an unusable state (call it before the credential's health is updated)."""
    if credential.health not in USABLE_HEALTH or health in USABLE_HEALTH:
        return
    now = utcnow()
    await record_event(session, credential.tenant_id, NotificationEventType.CREDENTIAL_UNHEALTHY,
                       f"credential:{credential.id}:{health.value}:{now.isoformat()}",
                       f"GivEnergy credential {credential.label} is {health.value.replace('_', ' ')}",
                       severity=Severity.CRITICAL, credential_id=credential.id, now=now)
