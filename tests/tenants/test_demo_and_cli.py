"""The demo tenant of `givfleet up`, and the `givfleet tenant|credential|apikey|admin` commands."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest
import typer.main
from rich.console import Console
from sqlalchemy import select, update
from typer.testing import CliRunner

from service import cli_access
from service.cli import app as cli
from service.core.roles import Role
from service.db.models.credential import CredentialHealth, UpstreamCredential
from service.runtime import Resources
from service.settings import Settings, get_settings
from service.simulator import Simulator, SimulatorConfig
from service.tenants.crypto import load_key_ring
from service.tenants.demo import DEMO_KEY_NAME, ensure_demo_tenant, issue_demo_admin_key
from service.tenants.service import AuthenticationService, open_token
from service.upstream import Route
from tests.support import served_simulator
from tests.tenants.factories import SIM_BASE_URL, quiet_simulator, unique_slug


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return quiet_simulator()


async def _ensure_demo_tenant(resources: Resources, sim: Simulator) -> bool:
    """What `givfleet up` does at start with the simulator it serves."""
    return await ensure_demo_tenant(resources, simulator_base_url=SIM_BASE_URL, token=sim.tokens["company"],
                                    accepts=lambda token: sim.token(token) is not None)


async def _demo_credentials(resources: Resources) -> dict[str, tuple[str, str, CredentialHealth]]:
    """The demo tenant's credentials by label: (token, key id, health)."""
    key_ring = load_key_ring(resources.settings)
    async with resources.session_factory() as session:
        rows = (await session.execute(select(UpstreamCredential))).scalars().all()
        return {row.label: (open_token(key_ring, row).get_secret_value(), row.key_id, row.health) for row in rows}


@pytest.mark.usefixtures("clean_db")
async def test_up_leaves_a_narrower_demo_credential_of_the_simulator_as_it_is(resources: Resources,
                                                                            sim: Simulator) -> None:
    engineer = sim.truth.account_of_token("engineer")
    narrow = sim.create_token(engineer.id, name="read-only", scopes=["api:account:read"])
    with resources.upstream.routed(Route(transport=httpx.ASGITransport(app=sim.app))):
        await _ensure_demo_tenant(resources, sim)
        # `givfleet credential add --tenant demo --base-url <the simulator's> --token-file -`, a deliberately
        # restricted token, then a restart of `up`
        await cli_access.add_credential_op(resources, "demo", narrow, label="read-only", base_url=SIM_BASE_URL)
        await _ensure_demo_tenant(resources, sim)

    credentials = await _demo_credentials(resources)
    assert credentials["read-only"][0] == narrow, "not widened to the company token"
    assert credentials["simulator"][0] == sim.tokens["company"]


@pytest.mark.usefixtures("clean_db")
async def test_up_reseals_a_demo_credential_no_configured_key_opens(resources: Resources, sim: Simulator) -> None:
    with resources.upstream.routed(Route(transport=httpx.ASGITransport(app=sim.app))):
        await _ensure_demo_tenant(resources, sim)
        async with resources.session_factory() as session, session.begin():  # its key since dropped from the ring
            await session.execute(update(UpstreamCredential).values(key_id="retired"))
        await _ensure_demo_tenant(resources, sim)  # no KeyRingError

    assert await _demo_credentials(resources) == {
        "simulator": (sim.tokens["company"], load_key_ring(resources.settings).active_key_id, CredentialHealth.OK)}


@pytest.mark.usefixtures("clean_db")
async def test_demo_tenant_is_created_once_with_a_working_admin_key(resources: Resources, sim: Simulator) -> None:
    with resources.upstream.routed(Route(transport=httpx.ASGITransport(app=sim.app))):
        assert await _ensure_demo_tenant(resources, sim)
    key = await issue_demo_admin_key(resources)
    assert key is not None
    async with resources.session_factory() as session:
        principal = await AuthenticationService(session).authenticate(key)
        assert principal.role.value == "admin"
        credential = (await session.execute(select(UpstreamCredential))).scalar_one()
        assert credential.base_url == SIM_BASE_URL
        assert credential.health is CredentialHealth.OK
        assert credential.account_type == "company"
    with resources.upstream.routed(Route(transport=httpx.ASGITransport(app=sim.app))):
        assert not await _ensure_demo_tenant(resources, sim)
    assert await issue_demo_admin_key(resources) is None, "the demo admin key is made (and shown) once"


@pytest.mark.usefixtures("clean_db")
async def test_a_users_key_named_like_the_demo_key_does_not_stop_up_issuing_it(resources: Resources,
                                                                               sim: Simulator) -> None:
    with resources.upstream.routed(Route(transport=httpx.ASGITransport(app=sim.app))):
        await _ensure_demo_tenant(resources, sim)
    # `givfleet apikey create --tenant demo --role admin --name "demo admin"`, before `up` first served
    await cli_access.create_api_key_op(resources, "demo", Role.ADMIN, DEMO_KEY_NAME, None, None)
    key = await issue_demo_admin_key(resources)
    assert key is not None, "up shows the demo admin key all the same"
    async with resources.session_factory() as session:
        assert (await AuthenticationService(session).authenticate(key)).role is Role.ADMIN
    assert await issue_demo_admin_key(resources) is None, "and only once"


@pytest.fixture
def cli_env(test_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[CliRunner]:
    """A runner whose `givfleet` talks to the test database and Redis."""
    assert test_settings.database_url is not None
    assert test_settings.redis_url is not None
    monkeypatch.setenv("GIVFLEET_DATABASE_URL", test_settings.database_url.get_secret_value())
    monkeypatch.setenv("GIVFLEET_REDIS_URL", test_settings.redis_url.get_secret_value())
    monkeypatch.setenv("GIVFLEET_REDIS__NAMESPACE", test_settings.redis.namespace)
    monkeypatch.setenv("GIVFLEET_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no .env of the developer
    monkeypatch.setattr(cli_access, "console", Console(width=250))  # whole tables, whatever the terminal
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def invoke(runner: CliRunner, *args: str, input: str | None = None) -> str:
    result = runner.invoke(cli, list(args), input=input, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.usefixtures("clean_db")
def test_cli_tenant_apikey_and_credential_round_trip(cli_env: CliRunner) -> None:
    slug = unique_slug("cli")
    assert f"Tenant {slug} created" in invoke(cli_env, "tenant", "create", slug, "--name", "Solar Ltd")
    assert slug in invoke(cli_env, "tenant", "list")

    output = invoke(cli_env, "apikey", "create", "--tenant", slug, "--role", "operator", "--expires", "30d")
    key = output.strip().splitlines()[-1]
    assert key.startswith("gvf_")
    listing = invoke(cli_env, "apikey", "list", "--tenant", slug)
    assert "operator" in listing
    assert key not in listing
    prefix = key.split("_")[1]
    assert "revoked" in invoke(cli_env, "apikey", "revoke", "--tenant", slug, prefix)

    added = invoke(cli_env, "credential", "add", "--tenant", slug, "--token", "cli-secret-token", "--no-check")
    assert "added" in added
    listing = invoke(cli_env, "credential", "list", "--tenant", slug)
    assert "unknown" in listing
    assert "cli-secret-token" not in listing

    assert "suspended" in invoke(cli_env, "tenant", "suspend", slug)
    assert "suspended" in invoke(cli_env, "tenant", "list")
    assert "active" in invoke(cli_env, "tenant", "activate", slug)

    rotated = invoke(cli_env, "admin", "rotate-key", "--generate")
    assert "1 credential(s) re-encrypted" in rotated


@pytest.mark.usefixtures("clean_db")
def test_cli_reports_domain_errors_without_a_traceback(cli_env: CliRunner) -> None:
    result = cli_env.invoke(cli, ["apikey", "list", "--tenant", "no-such-tenant"])
    assert result.exit_code == 1
    assert "no tenant with slug 'no-such-tenant'" in result.output


@pytest.mark.usefixtures("clean_db")
@pytest.mark.parametrize("name", ["bad\nname", "tab\there", "bell\x07"])
def test_a_tenant_name_with_control_characters_is_refused(cli_env: CliRunner, name: str) -> None:
    slug = unique_slug("ctl")
    result = cli_env.invoke(cli, ["tenant", "create", slug, "--name", name])
    assert result.exit_code == 1
    assert result.output.splitlines() == ["error: name must not contain control characters (tab, newline, NUL, ...)"]
    assert slug not in invoke(cli_env, "tenant", "list")


@pytest.mark.usefixtures("clean_db")
@pytest.mark.parametrize(("name", "error"), [
    ("bad\nkey", "error: name must not contain control characters (tab, newline, NUL, ...)"),
    ("k" * 101, "error: name is 1 to 100 characters"),  # the column's size: bad input, not a database error
])
def test_an_api_key_name_the_key_cannot_have_is_refused(cli_env: CliRunner, name: str, error: str) -> None:
    slug = unique_slug("ctlkey")
    invoke(cli_env, "tenant", "create", slug)
    result = cli_env.invoke(cli, ["apikey", "create", "--tenant", slug, "--role", "viewer", "--name", name])
    assert result.exit_code == 1
    assert result.output.splitlines() == [error]
    assert "viewer" not in invoke(cli_env, "apikey", "list", "--tenant", slug)


@pytest.mark.usefixtures("clean_db")
def test_a_tenant_name_longer_than_its_column_is_refused(cli_env: CliRunner) -> None:
    slug = unique_slug("long")
    result = cli_env.invoke(cli, ["tenant", "create", slug, "--name", "t" * 201])
    assert result.exit_code == 1
    assert result.output.splitlines() == ["error: name is 1 to 200 characters"]
    assert slug not in invoke(cli_env, "tenant", "list")


@pytest.fixture(scope="module")
def simulator_url() -> Iterator[tuple[str, Simulator]]:
    with served_simulator(SimulatorConfig.quiet()) as (base_url, simulator, _):
        yield base_url, simulator


@pytest.mark.usefixtures("clean_db")
def test_credential_add_refuses_a_token_givenergy_rejects(
    cli_env: CliRunner, simulator_url: tuple[str, Simulator]
) -> None:
    base_url, simulator = simulator_url
    slug = unique_slug("cred")
    invoke(cli_env, "tenant", "create", slug)
    add = ["credential", "add", "--tenant", slug, "--base-url", base_url, "--token-file", "-"]

    refused = cli_env.invoke(cli, add, input="not-a-token-givenergy-knows\n")
    assert refused.exit_code == 2
    assert "unauthorised" in refused.output
    assert "GivEnergy refused this token (401), so it was not stored" in refused.output
    assert "unauthorised" not in invoke(cli_env, "credential", "list", "--tenant", slug)

    stored_unchecked = invoke(cli_env, *add, "--no-check", "--label", "unchecked", input="not-checked\n")
    assert "Credential unchecked added" in stored_unchecked

    accepted = invoke(cli_env, *add, input=simulator.tokens["company"] + "\n")
    assert "ok" in accepted
    assert simulator.tokens["company"] not in accepted


@pytest.mark.usefixtures("clean_db")
def test_apikey_revoke_takes_the_full_key_and_says_already_revoked(cli_env: CliRunner) -> None:
    slug = unique_slug("keys")
    invoke(cli_env, "tenant", "create", slug)
    key = invoke(cli_env, "apikey", "create", "--tenant", slug, "--role", "viewer").strip().splitlines()[-1]
    prefix = key.split("_")[1]
    assert f"API key {prefix} revoked." in invoke(cli_env, "apikey", "revoke", "--tenant", slug, key)
    assert f"API key {prefix} was already revoked." in invoke(cli_env, "apikey", "revoke", "--tenant", slug, key)
    wrong_secret = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    mismatch = cli_env.invoke(cli, ["apikey", "revoke", "--tenant", slug, wrong_secret])
    assert mismatch.exit_code == 1
    assert "no such API key" in mismatch.output


def test_an_expiry_too_far_away_is_a_clear_error(cli_env: CliRunner) -> None:
    result = cli_env.invoke(cli, ["apikey", "create", "--tenant", "any", "--role", "viewer", "--expires", "99999999d"])
    assert result.exit_code == 2
    assert "99999999d is too far in the future" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_help_texts_have_no_markup() -> None:
    runner = CliRunner()

    def paths(command: click.Command, prefix: list[str]) -> Iterator[list[str]]:
        yield prefix
        for name, sub in getattr(command, "commands", {}).items():
            yield from paths(sub, [*prefix, name])

    for path in paths(typer.main.get_command(cli), []):
        text = runner.invoke(cli, [*path, "--help"], terminal_width=200).output
        assert not re.search(r"``|`[^`]+`|:(func|class|meth):", text), (path, text)
