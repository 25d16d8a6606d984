"""Tenant identity.

A :class:`TenantId` is the only way to name a tenant inside the domain layer. Tenant-owned repositories take
one in their constructor and filter every statement by it, so a repository cannot be built without saying
whose data it reads. Only authentication (a resolved principal), the CLI's admin commands and jobs that
re-load a tenant by id mint them.
"""

from __future__ import annotations

import uuid
from typing import NewType

TenantId = NewType("TenantId", uuid.UUID)


def tenant_id_from(value: uuid.UUID | str) -> TenantId:
    """Mint a :class:`TenantId` from a UUID or its string form (raises ``ValueError`` on malformed input)."""
    return TenantId(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
