"""Tenants and access: installer companies, their upstream GivEnergy credentials (encrypted at rest), givfleet
API keys (stored hashed), the principal every request acts as, and the audit log.

Public surface:

- :class:`Principal` (who acts; carries the :class:`~service.core.tenancy.TenantId`), :class:`Role`.
- :class:`AuditService` (``record()`` every write), :class:`TenantService`, :class:`CredentialService`,
  :class:`ApiKeyService`, :class:`AuthenticationService`.
- :func:`open_token` (decrypt a credential's token to build an upstream client), :func:`load_key_ring`.
- :func:`ensure_demo_tenant` (the demo set-up of ``givfleet up``).
"""

from service.core.principal import Principal
from service.core.roles import Role
from service.tenants.crypto import KeyRing, KeyRingError, load_key_ring
from service.tenants.demo import ensure_demo_tenant
from service.tenants.service import (
    ApiKeyService,
    AuditService,
    AuthenticationError,
    AuthenticationService,
    CheckOutcome,
    CreatedKey,
    CredentialService,
    TenantService,
    open_token,
    rotate_encryption,
)
from service.tenants.upstream import AccountProbe, probe_account

__all__ = [
    "AccountProbe",
    "ApiKeyService",
    "AuditService",
    "AuthenticationError",
    "AuthenticationService",
    "CheckOutcome",
    "CreatedKey",
    "CredentialService",
    "KeyRing",
    "KeyRingError",
    "Principal",
    "Role",
    "TenantService",
    "ensure_demo_tenant",
    "load_key_ring",
    "open_token",
    "probe_account",
    "rotate_encryption",
]
