"""Checking a credential upstream without holding a database transaction while GivEnergy answers.

The probe (one ``GET /account`` and a cheap read per scope, or a portal login) can take minutes when the
budget is busy. So: the credential is read on a short session by :class:`service.upstream.Upstream`, released,
probed upstream, and the result is recorded (and audited) in a new short unit of work. A check racing a delete
finds the row gone when it records, and answers "not found".
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from service.core.principal import Principal
from service.jobs.enqueue import unit_of_work
from service.policy import Action, authorize
from service.tenants.crypto import load_key_ring
from service.tenants.service import CheckOutcome, CredentialService
from service.tenants.upstream import probe_credential

if TYPE_CHECKING:
    from service.runtime import Resources


async def check_credential(resources: Resources, principal: Principal, credential_id: uuid.UUID) -> CheckOutcome:
    """Ask GivEnergy what the credential is, then record health, account, account type, scopes and tier.

    Raises:
        PermissionDeniedError: The principal may not check credentials (before any upstream call).
        NotFoundError: Unknown id, another tenant's, or deleted meanwhile.
    """
    authorize(principal, Action.CREDENTIAL_CHECK)
    probe = await probe_credential(resources.upstream, principal.tenant_id, credential_id)
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        service = CredentialService(session, principal, load_key_ring(resources.settings),
                                    default_requests_per_minute=resources.settings.givenergy.default_requests_per_minute)
        return await service.record_check(credential_id, probe)
