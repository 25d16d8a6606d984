"""Who is acting: the :class:`Principal` every domain call receives from authentication (or the CLI).

What a principal may do is decided in one place, :mod:`service.policy`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from service.core.roles import Role
from service.core.tenancy import TenantId


@dataclass(frozen=True)
class Principal:
    """An authenticated caller, bound to one tenant.

    Attributes:
        tenant_id: The tenant whose data the caller may see (the only way domain code learns it).
        role: What the caller may do.
        key_id: The API key used (``None`` for the CLI and system jobs).
        actor: A human-readable name for the audit log (``"apikey:<prefix>"``, ``"cli"``, ``"system"``).
        restricted_account_id: When set, the caller sees only this upstream account's subtree.
        client_address: Where the request came from (for the audit log).
        request_id: The request id (for the audit log).
    """

    tenant_id: TenantId
    role: Role
    key_id: uuid.UUID | None = None
    actor: str = "system"
    restricted_account_id: str | None = None
    client_address: str | None = None
    request_id: str | None = None

    @classmethod
    def cli(cls, tenant_id: TenantId, *, actor: str = "cli") -> Principal:
        """An admin principal for local administration (the ``givfleet`` command)."""
        return cls(tenant_id=tenant_id, role=Role.ADMIN, actor=actor, client_address="local")
