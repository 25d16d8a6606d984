"""Tenants and access: installer companies, their upstream GivEnergy credentials (encrypted at rest), givfleet
API keys (stored hashed), the principal every request acts as, and the audit log.

The package itself loads nothing: a module of another domain that needs one small part (say
:mod:`service.tenants.choice`) must not load all of tenants, whose services import back into that domain.

- :mod:`service.tenants.service`: :class:`AuditService` (``record()`` every write), :class:`TenantService`,
  :class:`CredentialService`, :class:`ApiKeyService`, :class:`AuthenticationService`, :func:`open_token` (decrypt
  a credential's token to build an upstream client).
- :mod:`service.tenants.crypto`: :func:`load_key_ring`; :mod:`service.tenants.demo`: :func:`ensure_demo_tenant`
  (the demo set-up of ``givfleet up``); :mod:`service.tenants.upstream`: :func:`probe_account`.
- Who acts: :class:`~service.core.principal.Principal` (carries the tenant id) and
  :class:`~service.core.roles.Role`.
"""
