"""The API token a tenant's syncs and live reads use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.db.models.credential import CredentialHealth, CredentialKind, UpstreamCredential
from service.tenants.choice import pick_api_token

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def credential(label: str, health: CredentialHealth, age_days: int, kind: CredentialKind = CredentialKind.API_TOKEN
               ) -> UpstreamCredential:
    return UpstreamCredential(label=label, kind=kind, health=health, created_at=T0 - timedelta(days=age_days))


def test_a_healthy_token_first_then_the_oldest_unchecked_one() -> None:
    old_unknown = credential("old-unknown", CredentialHealth.UNKNOWN, 30)
    new_ok = credential("new-ok", CredentialHealth.OK, 1)
    old_ok = credential("old-ok", CredentialHealth.OK, 10)
    portal = credential("portal", CredentialHealth.OK, 99, CredentialKind.PORTAL_LOGIN)
    refused = credential("refused", CredentialHealth.UNAUTHORISED, 50)

    assert pick_api_token([old_unknown, new_ok, portal, refused, old_ok]) is old_ok
    assert pick_api_token([new_ok, old_unknown]) is new_ok
    assert pick_api_token([credential("u2", CredentialHealth.UNKNOWN, 2), old_unknown]) is old_unknown


def test_no_token_when_every_token_is_refused_or_not_a_token() -> None:
    refused = [credential(h.value, h, 1) for h in
               (CredentialHealth.UNAUTHORISED, CredentialHealth.NO_SUBSCRIPTION, CredentialHealth.FORBIDDEN)]

    assert pick_api_token([*refused, credential("portal", CredentialHealth.OK, 1, CredentialKind.PORTAL_LOGIN)]) is None
    assert pick_api_token([]) is None
