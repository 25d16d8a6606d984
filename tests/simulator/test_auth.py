"""Auth like the real service: bearer tokens, scopes and account types per the docs' badges, approval, subscription."""

from __future__ import annotations

import pytest

from service.simulator import Simulator, SimulatorConfig
from service.simulator.records import ALL_SCOPES
from tests.simulator.conftest import ClientFactory, client_factory
from tests.simulator.docspec import ACCOUNT_TYPES, Endpoint
from tests.simulator.test_conformance import ENDPOINTS
from tests.simulator.world import World

# One token per account type; the badge's minimum type decides which must be refused.
TOKEN_OF_TYPE = {"customer": "customer", "engineer": "engineer", "company": "company", "distributor": "distributor"}


@pytest.fixture(scope="module")
def world() -> World:
    """A world shared by the badge checks (they are refused before any handler runs, or only read)."""
    return World()


async def _call(world: World, endpoint: Endpoint, token: str | None) -> int:
    params, body = world.request(endpoint)
    async with client_factory(world.sim)(token) as client:
        response = await client.request(endpoint.method, world.path(endpoint), params=params, json=body)
    return response.status_code


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.key for e in ENDPOINTS])
async def test_missing_or_unknown_token_is_401(world: World, endpoint: Endpoint) -> None:
    assert await _call(world, endpoint, None) == 401
    assert await _call(world, endpoint, "not-a-token") == 401


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.key for e in ENDPOINTS])
async def test_each_documented_scope_is_required(world: World, endpoint: Endpoint) -> None:
    company = world.sim.truth.account_of_token("company").id
    for scope in endpoint.scopes:
        token = world.sim.create_token(company, name=f"without {scope}", scopes=ALL_SCOPES - {scope})
        assert await _call(world, endpoint, token) == 403, scope


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.key for e in ENDPOINTS])
async def test_documented_account_type_is_enforced(world: World, endpoint: Endpoint) -> None:
    minimum = 0 if endpoint.account_type == "any" else ACCOUNT_TYPES.index(endpoint.account_type)
    for position, account_type in enumerate(ACCOUNT_TYPES):
        status = await _call(world, endpoint, TOKEN_OF_TYPE[account_type])
        allowed = position == minimum if endpoint.only else position >= minimum
        if allowed:
            assert status != 403, account_type
        else:
            assert status == 403, account_type


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.approved], ids=lambda e: e.key)
async def test_approved_users_only(world: World, endpoint: Endpoint) -> None:
    assert await _call(world, endpoint, "company_unapproved") == 403
    assert await _call(world, endpoint, "company") == 200


def test_the_documentation_has_badges_to_enforce() -> None:
    assert any(e.approved for e in ENDPOINTS)
    assert any(e.only for e in ENDPOINTS)
    assert {e.account_type for e in ENDPOINTS} >= {"any", "engineer", "company", "customer"}


async def test_parent_scope_grants_its_children(sim: Simulator, client: ClientFactory) -> None:
    company = sim.truth.account_of_token("company").id
    token = sim.create_token(company, scopes={"api:inverter"})
    async with client(token) as api:
        devices = await api.get("/communication-device")
        sites = await api.get("/site")
    assert devices.status_code == 200
    assert sites.status_code == 403


async def test_read_only_token_cannot_control(sim: Simulator, client: ClientFactory) -> None:
    serial = sim.truth.visible_serials("company")[0]
    async with client("company_readonly") as api:
        listed = await api.get(f"/inverter/{serial}/system-data/latest")
        write = await api.post(f"/inverter/{serial}/settings/24/write", json={"value": True})
    assert listed.status_code == 200
    assert write.status_code == 403
    assert sim.truth.control_log() == []


@pytest.mark.parametrize("status", [401, 402, 403])
async def test_no_subscription_answer_is_configurable(status: int) -> None:
    sim = Simulator(SimulatorConfig.quiet(no_subscription_status=status))
    async with client_factory(sim)("no_subscription") as api:
        refused = await api.get("/account")
    async with client_factory(sim)("company") as api:
        same_account_subscribed = await api.get("/account")
    assert refused.status_code == status
    assert "message" in refused.json()
    assert same_account_subscribed.status_code == 200


def test_no_subscription_status_must_be_a_credential_answer() -> None:
    with pytest.raises(ValueError, match="no_subscription_status"):
        SimulatorConfig.quiet(no_subscription_status=500)
