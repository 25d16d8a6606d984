"""What a credential can do upstream, found the way the GivEnergy Cloud lets one find it.

``GET /account`` says who the token belongs to (id, username, role, timezone) but not its account type or its
scopes. The type follows from the account's ``role`` and is checked against the endpoints whose documented
account-type badge is ``engineer+`` / ``company+``; scopes are found by calling one cheap, read-only endpoint
per scope (a page of one item) and noting which answer 403. Control scopes that could only be proved by
changing something are never probed. The rate-limit tier is learned from ``X-RateLimit-Limit``.

401, 402 and 403 on the account call are credential states (unauthorised / no subscription / forbidden), to
show the tenant, not transient errors.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from service.core.tenancy import TenantId
from service.db.models.credential import CredentialHealth, CredentialKind
from service.givenergy import (
    Account,
    CommunicationDevice,
    CredentialError,
    ForbiddenError,
    GivEnergyClient,
    GivEnergyError,
    Lane,
    LegacyPortalClient,
    PaymentRequiredError,
    UnauthorisedError,
)

if TYPE_CHECKING:
    from service.upstream import Upstream

_T = TypeVar("_T")

# The account's ``role`` names its place in the distributor > company > engineer > customer tree.
_TYPE_OF_ROLE = {
    "DISTRIBUTOR": "distributor",
    "COMPANY": "company",
    "ENGINEER": "engineer",
    "INSTALLER": "engineer",
    "SUB_CONTRACTOR": "engineer",
    "OWNER": "customer",
    "VIEWER": "customer",
    "EXTERNAL": "customer",
}
_TYPE_RANK = {"customer": 1, "engineer": 2, "company": 3, "distributor": 4}


@dataclass(frozen=True)
class AccountProbe:
    """The outcome of checking a credential upstream.

    Attributes:
        health: The credential's state.
        message: A sentence for the tenant (never contains the token).
        account_id: Upstream id of the token's own account.
        username: Upstream username of that account.
        account_type: ``customer``, ``engineer``, ``company`` or ``distributor`` (when known).
        scopes: Scopes proved by a successful call.
        timezone: The account's IANA timezone.
        requests_per_minute: The limit announced by ``X-RateLimit-Limit``, when seen.
    """

    health: CredentialHealth
    message: str
    account_id: str | None = None
    username: str | None = None
    account_type: str | None = None
    scopes: tuple[str, ...] = ()
    timezone: str | None = None
    requests_per_minute: int | None = None
    denied_scopes: tuple[str, ...] = field(default=())


def _mentions_subscription(error: GivEnergyError) -> bool:
    return "subscription" in error.message.lower()


async def _first(items: AsyncIterator[_T]) -> _T | None:
    async for item in items:
        return item
    return None


async def _granted(call: Callable[[], Awaitable[Any]]) -> bool | None:
    """True when the call succeeds, False on 403, None when the answer proves nothing either way."""
    try:
        await call()
    except ForbiddenError:
        return False
    except GivEnergyError:
        return None
    return True


async def probe_account(client: GivEnergyClient) -> AccountProbe:
    """Check the credential behind ``client``: health, own account, account type and scopes.

    Args:
        client: A client for the credential (its rate limiter, if any, is respected).

    Returns:
        What was found; transport failures give health ``unknown`` with the reason.
    """
    try:
        account = await client.get_account()
    except CredentialError as exc:
        return await _credential_refused(client, exc)
    except GivEnergyError as exc:
        return AccountProbe(CredentialHealth.UNKNOWN, f"could not reach GivEnergy to check the token: {exc}")

    found = _Scopes(["api:account:read"])
    account_type = await _probe_scopes_and_type(client, account, found)
    tier = (await client.limiter.state()).limit if client.limiter is not None else None
    return AccountProbe(
        CredentialHealth.OK,
        f"token works: account {account.name!r} ({account_type or 'unknown type'}), "
        f"{len(found.granted)} scopes confirmed",
        account_id=str(account.id) if account.id is not None else None,
        username=account.name,
        account_type=account_type,
        scopes=tuple(sorted(found.granted)),
        timezone=account.standard_timezone,
        requests_per_minute=tier,
        denied_scopes=tuple(sorted(found.denied)),
    )


@dataclass
class _Scopes:
    granted: list[str]
    denied: list[str] = field(default_factory=list)

    def note(self, scope: str, granted: bool | None) -> None:
        if granted is True:
            self.granted.append(scope)
        elif granted is False:
            self.denied.append(scope)


async def _probe_scopes_and_type(client: GivEnergyClient, account: Account, found: _Scopes) -> str | None:
    """Probe one cheap read per scope; return the account type (from the role, checked by badges)."""
    devices: list[CommunicationDevice] = []

    async def list_devices() -> None:
        device = await _first(client.iter_communication_devices(page_size=1))
        if device is not None:
            devices.append(device)

    found.note("api:inverter:list", await _granted(list_devices))
    found.note("api:site:list", await _granted(lambda: _first(client.iter_sites(page_size=1))))
    found.note("api:smart-device:list", await _granted(lambda: _first(client.iter_smart_devices(page_size=1))))

    account_type = _TYPE_OF_ROLE.get((account.role or "").upper())
    rank = _TYPE_RANK.get(account_type or "", 0)
    if account_type is None or rank >= _TYPE_RANK["engineer"]:
        # engineer+ badge: answers for engineers and above, 403 for customers (or without the scope)
        children = await _granted(lambda: _first(client.iter_account_children(page_size=1)))
        found.note("api:account:list", children)
        if children and rank < _TYPE_RANK["engineer"]:
            account_type, rank = "engineer", _TYPE_RANK["engineer"]
        # company+ badge: a 200 proves at least a company account
        if (children and account.id is not None and rank < _TYPE_RANK["company"]
                and await _granted(lambda: _first(client.iter_account_children(account.id, page_size=1)))):
            account_type = "company"
    if account_type == "customer":
        found.note("api:ev-charger:list", await _granted(lambda: _first(client.iter_ev_chargers(page_size=1))))

    serial = devices[0].inverter.serial if devices and devices[0].inverter is not None else None
    if serial:
        found.note("api:inverter:read", await _granted(lambda: client.get_system_data(serial)))
        # the settings list needs the control scope but only reads: the one safe proof of control
        found.note("api:inverter:control", await _granted(lambda: client.get_settings(serial)))
    return account_type


async def _credential_refused(client: GivEnergyClient, error: CredentialError) -> AccountProbe:
    if _mentions_subscription(error) or isinstance(error, PaymentRequiredError):
        return AccountProbe(
            CredentialHealth.NO_SUBSCRIPTION,
            f"GivEnergy requires a paid API subscription for this account (HTTP {error.status_code}: {error.message})",
        )
    if isinstance(error, UnauthorisedError):
        return AccountProbe(
            CredentialHealth.UNAUTHORISED,
            f"GivEnergy rejected the token (HTTP 401: {error.message}); it is invalid, expired or revoked",
        )
    return await _explain_forbidden(client, error)


async def _explain_forbidden(client: GivEnergyClient, error: CredentialError) -> AccountProbe:
    """403 on ``GET /account`` (any account type may call it): no subscription, or no ``api:account:read``."""
    other = await _granted(lambda: _first(client.iter_communication_devices(page_size=1)))
    if other is False:
        return AccountProbe(
            CredentialHealth.NO_SUBSCRIPTION,
            f"GivEnergy refused every request (HTTP 403: {error.message}); the account most likely has no "
            "API subscription (or the token has no read scopes)",
        )
    return AccountProbe(
        CredentialHealth.FORBIDDEN,
        f"the token may not read its own account (HTTP 403: {error.message}); give it the api:account:read scope",
        scopes=("api:inverter:list",) if other else (),
        denied_scopes=("api:account:read",),
    )


async def probe_portal_login(client: LegacyPortalClient) -> AccountProbe:
    """Check a legacy portal login by logging in (the portal reveals no account type or scopes).

    Args:
        client: A portal client for the credential.

    Returns:
        ``ok`` when the portal accepts the login, ``unauthorised`` when it refuses it, else ``unknown``.
    """
    try:
        await client.login()
    except UnauthorisedError:
        return AccountProbe(CredentialHealth.UNAUTHORISED, "the legacy portal refused the username or password")
    except GivEnergyError as exc:
        return AccountProbe(CredentialHealth.UNKNOWN, f"could not reach the legacy portal to check the login: {exc}")
    return AccountProbe(CredentialHealth.OK, "legacy portal login works (the portal reveals no account type or scopes)")


async def probe_credential(upstream: Upstream, tenant_id: TenantId, credential_id: uuid.UUID) -> AccountProbe:
    """Check one credential upstream (API token or portal login) through the one way upstream.

    No database connection is held while GivEnergy answers (the credential is read on a short session first).

    Raises:
        NotFoundError: The credential is unknown, another tenant's, or was deleted.
    """
    credential = await upstream.choose(tenant_id, credential_id)
    if credential.kind is CredentialKind.PORTAL_LOGIN:
        async with upstream.portal(tenant_id, credential_id) as portal:
            return await probe_portal_login(portal)
    async with upstream.client(tenant_id, Lane.INTERACTIVE, credential_id=credential_id) as client:
        return await probe_account(client)
