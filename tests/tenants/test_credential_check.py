"""`credential check` asks the (simulated) GivEnergy Cloud what a token is: account, type, scopes, health."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models.credential import CredentialHealth, CredentialKind
from service.givenergy import RetryPolicy
from service.runtime import Resources
from service.settings import Settings
from service.simulator import Simulator
from service.tenants.principal import Principal
from service.tenants.service import CheckOutcome, CredentialService
from service.tenants.upstream import default_client_factory, default_portal_factory
from tests.tenants.factories import fixed_key_ring, make_tenant, quiet_simulator, simulator_client_factory

ALL_READ_SCOPES = {"api:account:read", "api:inverter:list", "api:inverter:read", "api:site:list",
                   "api:smart-device:list"}


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return quiet_simulator()


async def check(db_session: AsyncSession, test_settings: Settings, resources: Resources, sim: Simulator,
                token: str) -> CheckOutcome:
    principal = Principal.cli(await make_tenant(db_session))
    service = CredentialService(db_session, principal, fixed_key_ring(),
                                simulator_client_factory(test_settings, resources, sim))
    credential = await service.add(token)
    assert credential.health is CredentialHealth.UNKNOWN
    return await service.check(credential.id)


@pytest.mark.parametrize(("token_name", "account_type", "extra_scopes"), [
    ("company", "company", {"api:account:list", "api:inverter:control"}),
    ("distributor", "distributor", {"api:account:list", "api:inverter:control"}),
    ("engineer", "engineer", {"api:account:list", "api:inverter:control"}),
    ("customer", "customer", {"api:ev-charger:list", "api:inverter:control"}),
])
async def test_good_token_reports_account_type_and_scopes(
    db_session: AsyncSession, test_settings: Settings, resources: Resources, sim: Simulator,
    token_name: str, account_type: str, extra_scopes: set[str],
) -> None:
    outcome = await check(db_session, test_settings, resources, sim, sim.tokens[token_name])
    credential = outcome.credential
    account = sim.truth.account_of_token(token_name)
    assert credential.health is CredentialHealth.OK
    assert credential.account_type == account_type
    assert set(credential.scopes) == ALL_READ_SCOPES | extra_scopes
    assert credential.upstream_account_id == str(account.id)
    assert credential.upstream_username == account.username
    assert credential.last_checked_at is not None


async def test_read_only_token_lacks_control_scope(
    db_session: AsyncSession, test_settings: Settings, resources: Resources, sim: Simulator
) -> None:
    outcome = await check(db_session, test_settings, resources, sim, sim.tokens["company_readonly"])
    assert outcome.credential.health is CredentialHealth.OK
    assert "api:inverter:control" not in outcome.credential.scopes
    assert "api:inverter:control" in outcome.probe.denied_scopes


async def test_bad_token_is_unauthorised(
    db_session: AsyncSession, test_settings: Settings, resources: Resources, sim: Simulator
) -> None:
    outcome = await check(db_session, test_settings, resources, sim, "not-a-real-token")
    assert outcome.credential.health is CredentialHealth.UNAUTHORISED
    assert "401" in (outcome.credential.health_message or "")
    assert outcome.credential.account_type is None


@pytest.mark.parametrize("status", [401, 402, 403])
async def test_no_subscription_is_its_own_health_state(
    db_session: AsyncSession, test_settings: Settings, resources: Resources, status: int
) -> None:
    sim = quiet_simulator(no_subscription_status=status)
    outcome = await check(db_session, test_settings, resources, sim, sim.tokens["no_subscription"])
    assert outcome.credential.health is CredentialHealth.NO_SUBSCRIPTION
    assert "subscription" in (outcome.credential.health_message or "")


async def test_token_that_cannot_read_its_account_is_forbidden(
    db_session: AsyncSession, test_settings: Settings, resources: Resources, sim: Simulator
) -> None:
    account = sim.truth.account_of_token("company")
    token = sim.create_token(account.id, scopes=["api:inverter:list", "api:inverter:read"])
    outcome = await check(db_session, test_settings, resources, sim, token)
    assert outcome.credential.health is CredentialHealth.FORBIDDEN
    assert "api:account:read" in (outcome.credential.health_message or "")


async def test_unreachable_upstream_leaves_health_unknown(
    db_session: AsyncSession, test_settings: Settings, resources: Resources
) -> None:
    principal = Principal.cli(await make_tenant(db_session))
    factory = default_client_factory(test_settings, resources.redis, base_url="http://127.0.0.1:1/v1",
                                     retry=RetryPolicy(max_attempts=1))
    service = CredentialService(db_session, principal, fixed_key_ring(), factory)
    credential = await service.add("some-token")
    outcome = await service.check(credential.id)
    assert outcome.credential.health is CredentialHealth.UNKNOWN
    assert "could not reach" in (outcome.credential.health_message or "")


@pytest.mark.parametrize(("right_password", "health"), [(True, CredentialHealth.OK),
                                                         (False, CredentialHealth.UNAUTHORISED)])
async def test_legacy_portal_login_is_checked_by_logging_in(
    db_session: AsyncSession, test_settings: Settings, resources: Resources, sim: Simulator,
    right_password: bool, health: CredentialHealth,
) -> None:
    account = sim.truth.account_of_token("company")
    portal = default_portal_factory(test_settings, resources.redis, transport=httpx.ASGITransport(app=sim.app),
                                    base_url="http://sim.test/GivManage/api")
    service = CredentialService(db_session, Principal.cli(await make_tenant(db_session)), fixed_key_ring(),
                                portal_factory=portal)
    password = account.password if right_password else "wrong-password"
    credential = await service.add(password, kind=CredentialKind.PORTAL_LOGIN, portal_username=account.username)
    outcome = await service.check(credential.id)
    assert outcome.credential.health is health
    assert outcome.credential.label == f"portal {account.username}"
