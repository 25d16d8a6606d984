"""Which of a tenant's upstream credentials the service calls GivEnergy with (syncs and live reads alike)."""

from __future__ import annotations

from collections.abc import Iterable

from service.db.models.credential import CredentialHealth, CredentialKind, UpstreamCredential

# Health states in which a token may work: healthy, or not yet checked (401/402/403 are known refusals).
USABLE_HEALTH = frozenset({CredentialHealth.OK, CredentialHealth.UNKNOWN})


def pick_api_token(credentials: Iterable[UpstreamCredential]) -> UpstreamCredential | None:
    """The API token to use: a healthy one first, then one not yet checked, the oldest of each; ``None`` when
    the tenant has no API token that is not known to be refused upstream."""
    usable = [c for c in credentials if c.kind is CredentialKind.API_TOKEN and c.health in USABLE_HEALTH]
    return min(usable, key=lambda c: (c.health is not CredentialHealth.OK, c.created_at), default=None)
