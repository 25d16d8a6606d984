"""`givfleet doctor` explains a broken configuration in one clear line per dependency, never a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from service.cli import app
from service.db.engine import create_engine
from service.embedded import EmbeddedServices, embedded_server_pids, up_lock
from service.settings import Settings, get_settings
from tests.support import EMBEDDED_OWNER, alive, free_port


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.chdir(str(tmp_path))  # no developer .env file
    for name in ("GIVFLEET_DATABASE_URL", "GIVFLEET_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()


def _doctor(monkeypatch: pytest.MonkeyPatch, **env: str) -> tuple[int, list[str]]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["doctor"])
    get_settings.cache_clear()
    assert "Traceback" not in result.output
    return result.exit_code, [line for line in result.output.splitlines() if line.startswith(("ok ", "FAIL "))]


def test_healthy_configuration_passes(monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str) -> None:
    code, lines = _doctor(monkeypatch, GIVFLEET_DATABASE_URL=database_url, GIVFLEET_REDIS_URL=redis_url)
    assert code == 0
    assert lines[0].startswith("ok database: PostgreSQL")
    assert "schema up to date" in lines[0]
    assert lines[1].startswith("ok redis: Redis")


def test_garbage_urls_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    code, lines = _doctor(monkeypatch, GIVFLEET_DATABASE_URL="not a url", GIVFLEET_REDIS_URL="http://x")
    assert code == 1
    assert lines[:2] == [
        "FAIL database: GIVFLEET_DATABASE_URL is not a valid URL: 'not a url' "
        "(expected postgresql://user:password@host:port/database)",
        "FAIL redis: GIVFLEET_REDIS_URL is not a Redis URL: 'http://x' (expected redis://host:port/db)",
    ]


def test_unreachable_servers_are_named_without_leaking_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    code, lines = _doctor(
        monkeypatch,
        GIVFLEET_DATABASE_URL="postgresql://givfleet:hunter2@127.0.0.1:1/givfleet",
        GIVFLEET_REDIS_URL="redis://:hunter2@127.0.0.1:1/0",
    )
    assert code == 1
    assert len(lines) == 3
    assert lines[0].startswith("FAIL database: cannot use 127.0.0.1:1:")
    assert lines[1].startswith("FAIL redis: cannot use 127.0.0.1:1:")
    assert all("hunter2" not in line for line in lines)


def test_a_url_that_does_not_parse_is_a_failed_check_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setenv("GIVFLEET_REDIS_URL", "redis://u:hunter2@[::1")
    monkeypatch.setenv("GIVFLEET_DATABASE_URL", "postgresql://u:hunter2@[::1/givfleet")
    result = CliRunner().invoke(app, ["doctor"])

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "hunter2" not in result.output
    assert ("FAIL redis: GIVFLEET_REDIS_URL is not a valid URL: 'redis://*** (unparseable URL)' (Invalid IPv6 URL; "
            "expected redis://host:port/db)") in result.output.splitlines()
    assert "│ redis              │ redis://*** (unparseable URL) " in result.output
    assert ("FAIL database: GIVFLEET_DATABASE_URL is not a valid URL: 'postgresql+asyncpg://*** (unparseable URL)' "
            "(expected postgresql://user:password@host:port/database)") in result.output.splitlines()


def test_unconfigured_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    code, lines = _doctor(monkeypatch)
    assert code == 0
    assert "embedded PostgreSQL" in lines[0]
    assert "embedded Redis" in lines[1]
    assert lines[2] == "ok givfleet up: not running on .givfleet"


def test_the_api_address_is_the_running_ups_else_the_settings(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("GIVFLEET_HOME", str(home))
    with up_lock(home, api="127.0.0.1:9123"):
        running = CliRunner().invoke(app, ["doctor"]).output
    stopped = CliRunner().invoke(app, ["doctor"]).output

    def api_row(output: str) -> str:
        return next(line for line in output.splitlines() if line.startswith("│ api "))

    assert "│ 127.0.0.1:9123 (where the running givfleet up serves it) " in api_row(running)
    assert ("│ 127.0.0.1:8000 (GIVFLEET_API__HOST and GIVFLEET_API__PORT, or their defaults; givfleet up --host/--port "
            "override them) ") in api_row(stopped)


def test_servers_left_by_a_killed_up_are_reported_running_with_who_left_them(monkeypatch: pytest.MonkeyPatch,
                                                                              tmp_path: Path) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("GIVFLEET_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "400")  # one line per check
    owner = subprocess.Popen([sys.executable, "-c", EMBEDDED_OWNER, str(home)],  # noqa: S603
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        assert "serving\n" in owner.stdout  # after its log lines
        owner.send_signal(signal.SIGKILL)
        assert owner.wait(timeout=60) == -signal.SIGKILL
        servers = embedded_server_pids(home)

        code, lines = _doctor(monkeypatch)

        assert code == 0
        assert lines == [
            f"ok {check}: embedded {name} running (pid {servers[name]}), left by a givfleet up that is gone (pid "
            f"{owner.pid}): the next givfleet command on this home adopts it (`givfleet up` keeps it running, any "
            f"other command stops it when it ends), or stop it with `kill {servers[name]}`"
            for check, name in (("database", "PostgreSQL"), ("redis", "Redis"))
        ] + [f"ok givfleet up: not running on {home}"]
        adopter = EmbeddedServices(home)  # what the next short command does
        adopter.resolve(Settings(_env_file=None, home=home))
        adopter.close()
        assert [pid for pid in servers.values() if alive(pid)] == []
        assert _doctor(monkeypatch)[1][0] == "ok database: not configured: `givfleet up` starts an embedded PostgreSQL"
    finally:
        owner.kill()
        owner.wait()
        for pid in embedded_server_pids(home).values():  # never leave a server behind, whatever failed
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()


@pytest.mark.usefixtures("cli_env", "clean_db")
def test_an_upstream_base_url_is_shown_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIVFLEET_GIVENERGY__BASE_URL", "https://user:s3cret@proxy.example/v1")
    get_settings.cache_clear()
    runner = CliRunner()
    assert runner.invoke(app, ["tenant", "create", "acme"]).exit_code == 0
    proxy = f"http://fleet:hunter2@127.0.0.1:{free_port()}/v1"
    runner.invoke(app, ["credential", "add", "--tenant", "acme", "--base-url", proxy, "--token-file", "-"],
                  input="a-token\n")  # stored unchecked: nothing listens there

    doctor = runner.invoke(app, ["doctor"], env={"COLUMNS": "400"})

    assert "hunter2" not in doctor.output
    assert "s3cret" not in doctor.output
    assert (f"ok upstreams: acme -> {proxy.replace(':hunter2@', ':***@')}"
            in [line.strip() for line in doctor.output.splitlines()])
    base_url_row = next(line for line in doctor.output.splitlines() if line.startswith("│ givenergy base URL "))
    assert "│ https://user:***@proxy.example/v1 (of credentials added without a base URL;" in base_url_row


def _refuse_every_credential(url: str, tenant: str) -> None:
    """What `credential check` records once GivEnergy answers 401 for each of the tenant's credentials."""
    async def refuse() -> None:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(text(
                    "UPDATE upstream_credentials SET health = 'unauthorised', "
                    "health_message = 'Unauthenticated. [GET /account] (HTTP 401)' "
                    "WHERE tenant_id = (SELECT id FROM tenants WHERE slug = :slug)"), {"slug": tenant})
        finally:
            await engine.dispose()

    asyncio.run(refuse())


def _add_unchecked_credential(runner: CliRunner, tenant: str) -> None:
    assert runner.invoke(app, ["tenant", "create", tenant]).exit_code == 0
    added = runner.invoke(app, ["credential", "add", "--tenant", tenant, "--no-check", "--token-file", "-"],
                          input=f"{tenant}-token\n")
    assert added.exit_code == 0, added.output


def _upstreams(runner: CliRunner) -> tuple[int, str]:
    doctor = runner.invoke(app, ["doctor"], env={"COLUMNS": "400"})
    return doctor.exit_code, next(line.strip() for line in doctor.output.splitlines() if " upstreams: " in line)


@pytest.mark.usefixtures("clean_db")
def test_a_tenant_whose_credentials_are_all_refused_fails_the_upstreams_check(cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    _add_unchecked_credential(runner, "acme")

    assert _upstreams(runner) == (0, "ok upstreams: acme -> GivEnergy Cloud"), "not checked yet: usable"
    _refuse_every_credential(cli_env["GIVFLEET_DATABASE_URL"], "acme")
    assert _upstreams(runner) == (1, "FAIL upstreams: acme -> GivEnergy Cloud, credential unauthorised: "
                                     "Unauthenticated. [GET /account] (HTTP 401)"), "no tenant can sync"


@pytest.mark.usefixtures("clean_db")
def test_one_customer_whose_credentials_are_refused_is_named_without_failing_the_install(
        cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    _add_unchecked_credential(runner, "acme")
    _add_unchecked_credential(runner, "globex")

    _refuse_every_credential(cli_env["GIVFLEET_DATABASE_URL"], "acme")

    assert _upstreams(runner) == (0, "ok upstreams: acme -> GivEnergy Cloud, credential unauthorised: "
                                     "Unauthenticated. [GET /account] (HTTP 401); globex -> GivEnergy Cloud")
