"""Who is acting: the :class:`Principal` every domain call receives from authentication (or the CLI)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from service.core.errors import PermissionDeniedError
from service.core.tenancy import TenantId
from service.db.models.api_key import Role


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

    def allows(self, role: Role) -> bool:
        """Whether this principal has at least ``role``."""
        return self.role.rank >= role.rank

    def require(self, role: Role) -> None:
        """Raise unless this principal has at least ``role``.

        Raises:
            PermissionDeniedError: The role is too low (a 403 at the edges).
        """
        if not self.allows(role):
            raise PermissionDeniedError(
                f"this action needs the {role.value} role; the key in use has the {self.role.value} role"
            )

    def require_whole_tenant(self) -> None:
        """Raise if this principal is restricted to an account subtree.

        Tenant-wide actions (managing keys and credentials, reading the audit log, syncing) are not for a key
        that sees only part of the tenant: it could otherwise mint itself an unrestricted key.

        Raises:
            PermissionDeniedError: The key is restricted to a subtree (a 403 at the edges).
        """
        if self.restricted_account_id is not None:
            raise PermissionDeniedError("a key restricted to an account subtree cannot act on the whole tenant")
