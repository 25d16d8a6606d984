"""`credential check` asks the (simulated) GivEnergy Cloud what a token is: account, type, scopes, health."""

from __future__ import annotations

import pytest

from service.core.principal import Principal
from service.db.models.credential import CredentialHealth, CredentialKind
from service.givenergy import RetryPolicy
from service.jobs.enqueue import unit_of_work
from service.runtime import Resources
from service.simulator import Simulator
from service.tenants.checks import check_credential
from service.tenants.crypto import load_key_ring
from service.tenants.service import CheckOutcome, CredentialService
from service.upstream import Route
from tests.tenants.factories import make_tenant, quiet_simulator, simulator_route

pytestmark = pytest.mark.usefixtures("clean_db")

ALL_READ_SCOPES = {"api:account:read", "api:inverter:list", "api:inverter:read", "api:site:list",
                   "api:smart-device:list"}


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return quiet_simulator()


async def check(resources: Resources, route: Route, token: str, *, kind: CredentialKind = CredentialKind.API_TOKEN,
                portal_username: str | None = None) -> CheckOutcome:
    """Add a credential (committed), then check it along ``route`` as `credential check` does."""
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        principal = Principal.cli(await make_tenant(session))
        credential = await CredentialService(session, principal, load_key_ring(resources.settings)).add(
            token, kind=kind, portal_username=portal_username)
    assert credential.health is CredentialHealth.UNKNOWN
    with resources.upstream.routed(route):
        return await check_credential(resources, principal, credential.id)


@pytest.mark.parametrize(("token_name", "account_type", "extra_scopes"), [
    ("company", "company", {"api:account:list", "api:inverter:control"}),
    ("distributor", "distributor", {"api:account:list", "api:inverter:control"}),
    ("engineer", "engineer", {"api:account:list", "api:inverter:control"}),
    ("customer", "customer", {"api:ev-charger:list", "api:inverter:control"}),
])
async def test_good_token_reports_account_type_and_scopes(
    resources: Resources, sim: Simulator,
    token_name: str, account_type: str, extra_scopes: set[str],
) -> None:
    outcome = await check(resources, simulator_route(sim), sim.tokens[token_name])
    credential = outcome.credential
    account = sim.truth.account_of_token(token_name)
    assert credential.health is CredentialHealth.OK
    assert credential.account_type == account_type
    assert set(credential.scopes) == ALL_READ_SCOPES | extra_scopes
    assert credential.upstream_account_id == str(account.id)
    assert credential.upstream_username == account.username
    assert credential.last_checked_at is not None


async def test_read_only_token_lacks_control_scope(
    resources: Resources, sim: Simulator
) -> None:
    outcome = await check(resources, simulator_route(sim), sim.tokens["company_readonly"])
    assert outcome.credential.health is CredentialHealth.OK
    assert "api:inverter:control" not in outcome.credential.scopes
    assert "api:inverter:control" in outcome.probe.denied_scopes


async def test_bad_token_is_unauthorised(
    resources: Resources, sim: Simulator
) -> None:
    outcome = await check(resources, simulator_route(sim), "not-a-real-token")
    assert outcome.credential.health is CredentialHealth.UNAUTHORISED
    assert "401" in (outcome.credential.health_message or "")
    assert outcome.credential.account_type is None


@pytest.mark.parametrize("status", [401, 402, 403])
async def test_no_subscription_is_its_own_health_state(
    resources: Resources, status: int
) -> None:
    sim = quiet_simulator(no_subscription_status=status)
    outcome = await check(resources, simulator_route(sim), sim.tokens["no_subscription"])
    assert outcome.credential.health is CredentialHealth.NO_SUBSCRIPTION
    assert "subscription" in (outcome.credential.health_message or "")


async def test_token_that_cannot_read_its_account_is_forbidden(
    resources: Resources, sim: Simulator
) -> None:
    account = sim.truth.account_of_token("company")
    token = sim.create_token(account.id, scopes=["api:inverter:list", "api:inverter:read"])
    outcome = await check(resources, simulator_route(sim), token)
    assert outcome.credential.health is CredentialHealth.FORBIDDEN
    assert "api:account:read" in (outcome.credential.health_message or "")


async def test_unreachable_upstream_leaves_health_unknown(
    resources: Resources
) -> None:
    nowhere = Route(base_url="http://127.0.0.1:1/v1", retry=RetryPolicy(max_attempts=1))
    outcome = await check(resources, nowhere, "some-token")
    assert outcome.credential.health is CredentialHealth.UNKNOWN
    assert "could not reach" in (outcome.credential.health_message or "")


@pytest.mark.parametrize(("right_password", "health"), [(True, CredentialHealth.OK),
                                                         (False, CredentialHealth.UNAUTHORISED)])
async def test_legacy_portal_login_is_checked_by_logging_in(
    resources: Resources, sim: Simulator,
    right_password: bool, health: CredentialHealth,
) -> None:
    account = sim.truth.account_of_token("company")
    password = account.password if right_password else "wrong-password"
    outcome = await check(resources, simulator_route(sim), password, kind=CredentialKind.PORTAL_LOGIN,
                          portal_username=account.username)
    assert outcome.credential.health is health
    assert outcome.credential.label == f"portal {account.username}"
