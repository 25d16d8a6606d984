"""The one way upstream: budgets keyed by the token (not the credential row), no client built elsewhere."""

from __future__ import annotations

import ast
import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import delete, func, select

from service.core.principal import Principal
from service.core.tenancy import TenantId, tenant_id_from
from service.db.models.credential import BudgetSalt, CredentialKind
from service.db.models.mirror import SyncKind, SyncState
from service.givenergy import Lane
from service.jobs.enqueue import unit_of_work
from service.mirror.runner import SyncOptions, SyncRunner
from service.runtime import Resources
from service.settings import GivEnergySettings, SecuritySettings, Settings
from service.tenants.crypto import generate_key, load_key_ring
from service.tenants.service import CredentialService, TenantService
from service.upstream import ChosenCredential, Route, Upstream
from tests.mirror.conftest import quiet_simulator
from tests.mirror.truth import expected, mirrored
from tests.test_layers import SERVICE, trees


async def _tenant_holding(resources: Resources, token: str, requests_per_minute: int) -> TenantId:
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        tenant = await TenantService(session).create(f"t-{uuid.uuid4().hex[:8]}")
        tenant_id = tenant_id_from(tenant.id)
        await CredentialService(session, Principal.cli(tenant_id), load_key_ring(resources.settings)).add(
            token, base_url="http://simulator.test/v1", requests_per_minute=requests_per_minute)
    return tenant_id


@pytest.mark.usefixtures("clean_db")
async def test_two_tenants_holding_one_token_share_its_budget_and_see_no_429(resources: Resources) -> None:
    # GivEnergy counts requests per token: 40 a second here. Two tenants hold the same token and sync at once.
    sim = quiet_simulator(40, rate_limits_enabled=True, rate_limit_per_window=40, rate_limit_window_seconds=1.0)
    token = sim.tokens["company"]
    tenants = [await _tenant_holding(resources, token, 40) for _ in range(2)]
    settings = resources.settings.model_copy(update={"givenergy": GivEnergySettings(rate_limit_window_seconds=1.0)})
    upstream = Upstream(settings, resources.redis, resources.session_factory,
                        Route(transport=httpx.ASGITransport(app=sim.app)))
    runner = SyncRunner(resources.engine, resources.session_factory, upstream.sync_target, SyncOptions(page_size=25))

    outcomes = await asyncio.gather(*(runner.run(tenant, SyncKind.FULL) for tenant in tenants))

    assert [outcome.state for outcome in outcomes] == [SyncState.SUCCEEDED] * 2, [o.error for o in outcomes]
    assert sum(outcome.requests_used for outcome in outcomes) > 2 * 40  # more than two windows' worth in all
    assert sim.truth.counters()["company"].throttled == 0
    assert [outcome.rate_limited for outcome in outcomes] == [0, 0]
    for tenant in tenants:
        async with resources.session_factory() as session:
            assert await mirrored(session, tenant) == expected(sim)


def _with_keys(settings: Settings, keys: dict[str, str], active_key_id: str) -> Settings:
    security = SecuritySettings(encryption_keys={key_id: SecretStr(key) for key_id, key in keys.items()},
                                active_key_id=active_key_id)
    return settings.model_copy(update={"security": security})


@pytest.mark.usefixtures("clean_db")
async def test_a_key_rotation_keeps_one_budget_per_token(resources: Resources) -> None:
    # While a rotation rolls out, one process still has the old key ring and another the new one (a new active
    # key): requests either sends with the token must count in one budget, not two of 300 a minute each.
    old_key, new_key = generate_key(), generate_key()
    before = _with_keys(resources.settings, {"old": old_key}, "old")
    during = _with_keys(resources.settings, {"old": old_key, "new": new_key}, "new")
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        tenant = await TenantService(session).create(f"t-{uuid.uuid4().hex[:8]}")
        tenant_id = tenant_id_from(tenant.id)
        await CredentialService(session, Principal.cli(tenant_id), load_key_ring(before)).add(
            "rotating-token", base_url="http://simulator.test/v1", requests_per_minute=5)
    old_process, new_process = (Upstream(settings, resources.redis, resources.session_factory)
                                for settings in (before, during))
    old_budget = await old_process.budget(await old_process.choose(tenant_id))
    new_budget = await new_process.budget(await new_process.choose(tenant_id))

    for _ in range(3):
        await old_budget.acquire(lane=Lane.SYNC)
    await new_budget.acquire(lane=Lane.INTERACTIVE)

    assert (await new_budget.state()).used == 4
    assert (await old_budget.state()).used == 4
    assert "rotating-token" not in new_budget.credential_id


@pytest.mark.usefixtures("clean_db")
async def test_processes_starting_at_once_make_one_budget_salt(resources: Resources) -> None:
    kept = await resources.upstream.budget_salt()
    async with resources.session_factory.begin() as session:
        await session.execute(delete(BudgetSalt))
    processes = [Upstream(resources.settings, resources.redis, resources.session_factory) for _ in range(6)]

    try:
        salts = await asyncio.gather(*(process.budget_salt() for process in processes))

        assert len(set(salts)) == 1
        async with resources.session_factory() as session:
            assert await session.scalar(select(func.count()).select_from(BudgetSalt)) == 1
    finally:  # the run's other processes (resources.upstream) keep theirs
        async with resources.session_factory.begin() as session:
            await session.execute(delete(BudgetSalt))
            session.add(BudgetSalt(salt=kept))


async def _delete_namespace(resources: Resources) -> None:
    keys = [key async for key in resources.redis.scan_iter(match=f"{resources.settings.redis.namespace}:*")]
    if keys:
        await resources.redis.delete(*keys)


@pytest.mark.usefixtures("clean_db")
async def test_emptying_redis_keeps_one_budget_per_token(resources: Resources) -> None:
    # A sync run holds its limiter for minutes; Redis is flushed (or evicts) meanwhile and a new client is made:
    # both must count in the token's one budget, else GivEnergy sees twice the requests and answers 429.
    tenant_id = await _tenant_holding(resources, "long-lived-token", 5)
    running = Upstream(resources.settings, resources.redis, resources.session_factory)
    sync_budget = await running.budget(await running.choose(tenant_id))

    await _delete_namespace(resources)
    started_later = Upstream(resources.settings, resources.redis, resources.session_factory)
    new_budget = await started_later.budget(await started_later.choose(tenant_id))
    await sync_budget.acquire(lane=Lane.SYNC)
    await new_budget.acquire(lane=Lane.INTERACTIVE)

    assert (await new_budget.state()).used == 2


@pytest.mark.usefixtures("clean_db")
async def test_redis_holds_no_budget_salt(resources: Resources) -> None:
    tenant_id = await _tenant_holding(resources, "some-token", 5)
    process = Upstream(resources.settings, resources.redis, resources.session_factory)
    await (await process.budget(await process.choose(tenant_id))).acquire(lane=Lane.SYNC)
    salt = await process.budget_salt()

    keys = [key async for key in resources.redis.scan_iter(match=f"{resources.settings.redis.namespace}:*")]
    values = [await resources.redis.get(key) for key in keys if await resources.redis.type(key) == b"string"]
    assert keys  # the budget itself is in Redis
    assert not any(b"salt" in key for key in keys)
    assert salt not in values


def _portal_login(username: str, password: str) -> ChosenCredential:
    return ChosenCredential(id=uuid.uuid4(), kind=CredentialKind.PORTAL_LOGIN, base_url=None,
                            requests_per_minute=None, portal_username=username, secret=SecretStr(password))


async def test_portal_logins_differing_only_where_a_colon_falls_have_their_own_budgets(resources: Resources) -> None:
    upstream = resources.upstream

    first = await upstream.budget(_portal_login("installer:north", "hunter2"))
    second = await upstream.budget(_portal_login("installer", "north:hunter2"))

    assert first.credential_id != second.credential_id


def _constructions(path: Path, tree: ast.Module, names: set[str]) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in names or (name == "from_settings" and isinstance(func, ast.Attribute)
                                 and isinstance(func.value, ast.Name) and func.value.id in names):
                found.append(f"{path.relative_to(SERVICE.parent)}:{node.lineno}")
    return found


def test_no_upstream_client_is_built_outside_the_one_entry_point() -> None:
    allowed = {SERVICE / "upstream.py"}
    clients = {"GivEnergyClient", "LegacyPortalClient"}
    offenders = [hit for path, tree in trees().items()
                 if path not in allowed and "givenergy" not in path.relative_to(SERVICE).parts
                 for hit in _constructions(path, tree, clients)]
    assert offenders == []
