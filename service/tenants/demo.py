"""The demo tenant ``givfleet up`` creates on a machine with no configuration."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from service.core.errors import GivfleetError
from service.core.principal import Principal
from service.core.roles import Role
from service.core.tenancy import tenant_id_from
from service.db.models.credential import CredentialHealth
from service.jobs.enqueue import unit_of_work
from service.tenants.checks import check_credential
from service.tenants.crypto import KeyRing, KeyRingError, load_key_ring
from service.tenants.repository import TenantRepository
from service.tenants.service import ApiKeyService, CredentialService, TenantService, open_token

if TYPE_CHECKING:
    from service.db.models.credential import UpstreamCredential
    from service.runtime import Resources

log = structlog.get_logger(__name__)

DEMO_SLUG = "demo"
DEMO_KEY_NAME = "demo admin"


async def ensure_demo_tenant(resources: Resources, *, simulator_base_url: str, token: str,
                             accepts: Callable[[str], bool]) -> bool:
    """Make the demo tenant use the simulator being served: create it with a credential of the simulator unless
    it exists (its admin key comes from :func:`issue_demo_admin_key`, once it can be shown); else give the token
    given to those of its credentials of the simulator whose token the simulator does not accept (it serves a
    fleet of another seed or size now) or that no configured key opens, or give it one if it has none. A
    credential holding another token the simulator knows (a user's narrower one) is left as it is.

    A credential given a token now, or not healthy when last checked, is then checked against the simulator, so a
    credential refused by a fleet served earlier is usable again (a failure leaves its health ``unknown`` when its
    token was replaced now, else as it was); a healthy one keeping its token is not asked again at every start.

    Args:
        resources: Open resources (database, Redis, settings).
        simulator_base_url: The simulator's API v1 base URL (e.g. ``http://127.0.0.1:8081/v1``).
        token: A simulator bearer token (e.g. ``Simulator.tokens["company"]``).
        accepts: Whether the simulator accepts a bearer token (e.g. ``Simulator.token(value) is not None``).

    Returns:
        Whether the tenant was created now.
    """
    key_ring = load_key_ring(resources.settings)
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        tenant = await TenantRepository(session).get_by_slug(DEMO_SLUG)
        created = tenant is None
        if tenant is None:
            tenant = await TenantService(session).create(DEMO_SLUG, name="Demo installer (simulated fleet)",
                                                         actor="givfleet-up")
        principal = Principal.cli(tenant_id_from(tenant.id), actor="givfleet-up")
        credentials = CredentialService(session, principal, key_ring)
        served = [credential for credential in await credentials.list() if credential.base_url == simulator_base_url]
        to_check = []
        for credential in served:
            if not _still_accepted(key_ring, credential, accepts):
                await credentials.replace_secret(credential.id, token)  # sealed under the active key
                log.info("demo_tenant.token_replaced", credential_id=str(credential.id))
                to_check.append(credential.id)
            elif credential.health is not CredentialHealth.OK:
                to_check.append(credential.id)
        if not served:
            to_check = [(await credentials.add(token, label="simulator", base_url=simulator_base_url)).id]
    for credential_id in to_check:
        try:
            outcome = await check_credential(resources, principal, credential_id)
            log.info("demo_tenant.checked", created=created, health=outcome.probe.health.value,
                     account_type=outcome.probe.account_type)
        except GivfleetError as exc:  # the demo works without a checked credential
            log.warning("demo_tenant.check_failed", error=str(exc))
    return created


def _still_accepted(key_ring: KeyRing, credential: UpstreamCredential, accepts: Callable[[str], bool]) -> bool:
    """Whether the credential opens with a configured key and holds a token the simulator accepts."""
    try:
        return accepts(open_token(key_ring, credential).get_secret_value())
    except KeyRingError:  # sealed under a key no longer configured: stale, as the token it held
        return False


async def issue_demo_admin_key(resources: Resources) -> str | None:
    """The demo tenant's admin key, made the first time this is asked (the caller prints it at once: a key made
    is a key shown).

    Returns:
        The new key's full text, or ``None`` when the demo tenant has had its admin key already (then tell the
        user: ``givfleet apikey create --tenant demo --role admin``) or does not exist.
    """
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        tenant = await TenantRepository(session).get_by_slug(DEMO_SLUG)
        if tenant is None:
            return None
        keys = ApiKeyService(session, Principal.cli(tenant_id_from(tenant.id), actor="givfleet-up"))
        if any(key.demo_key for key in await keys.list()):  # revoked too: it was shown once already
            return None
        created = await keys.create(name=DEMO_KEY_NAME, role=Role.ADMIN, demo_key=True)
    return created.text
