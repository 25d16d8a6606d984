"""A misconfigured or unreachable dependency stops every command with doctor's one line and exit code 2, before
anything is changed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from service.cli import app
from service.embedded import StartupError
from service.launcher import QuietServer, start_server
from service.settings import get_settings
from tests.cli.test_shared_home import Up
from tests.conftest import create_database, drop_database
from tests.support import free_port

UNREACHABLE_REDIS = "redis://:hunter2@127.0.0.1:1/0"


@pytest.fixture
def empty_database(server_urls: tuple[str, str]) -> Iterator[str]:
    """A database nothing has migrated."""
    name = f"givfleet_empty_{uuid.uuid4().hex[:12]}"
    url = asyncio.run(create_database(server_urls[0], name))
    yield url
    asyncio.run(drop_database(server_urls[0], name))


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # no developer .env file
    monkeypatch.setenv("GIVFLEET_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _tables(url: str) -> list[str]:
    async def read() -> list[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
                return [row[0] for row in rows]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_up_checks_every_dependency_before_migrating(monkeypatch: pytest.MonkeyPatch, empty_database: str) -> None:
    monkeypatch.setenv("GIVFLEET_DATABASE_URL", empty_database)
    monkeypatch.setenv("GIVFLEET_REDIS_URL", UNREACHABLE_REDIS)
    monkeypatch.setenv("GIVFLEET_SIMULATOR__PORT", str(free_port()))  # up checks its ports first: free ones
    result = CliRunner().invoke(app, ["up", "--port", str(free_port())])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: redis: cannot use 127.0.0.1:1: ")
    assert "hunter2" not in result.output
    assert _tables(empty_database) == [], "nothing may be migrated or created before every dependency answers"


@pytest.mark.parametrize("command", [["tenant", "list"], ["apikey", "list", "--tenant", "demo"],
                                     ["sync", "--tenant", "demo"], ["migrate", "current"]])
def test_a_bad_database_url_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch, redis_url: str,
                                                    command: list[str]) -> None:
    monkeypatch.setenv("GIVFLEET_DATABASE_URL", "not a url")
    monkeypatch.setenv("GIVFLEET_REDIS_URL", redis_url)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: database: GIVFLEET_DATABASE_URL is not a valid URL: 'not a url' "
        "(expected postgresql://user:password@host:port/database)"]


def test_a_database_behind_the_migrations_says_how_to_upgrade(monkeypatch: pytest.MonkeyPatch, redis_url: str,
                                                              empty_database: str) -> None:
    monkeypatch.setenv("GIVFLEET_DATABASE_URL", empty_database)
    monkeypatch.setenv("GIVFLEET_REDIS_URL", redis_url)
    result = CliRunner().invoke(app, ["tenant", "create", "acme"])
    assert result.exit_code == 2
    assert "schema at no revision" in result.output
    assert "run `givfleet migrate upgrade`" in result.output


def test_a_database_a_newer_release_migrated_is_usable(monkeypatch: pytest.MonkeyPatch, redis_url: str,
                                                        empty_database: str) -> None:
    # A rolling upgrade: the new release's migration ran first; this release's pods must still start and serve.
    async def stamp_a_future_revision() -> None:
        engine = create_async_engine(empty_database)
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)"))
            await connection.execute(text("INSERT INTO alembic_version VALUES ('9999_from_a_newer_release')"))
        await engine.dispose()

    asyncio.run(stamp_a_future_revision())
    monkeypatch.setenv("GIVFLEET_DATABASE_URL", empty_database)
    monkeypatch.setenv("GIVFLEET_REDIS_URL", redis_url)
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "schema at 9999_from_a_newer_release, newer than this release's" in result.output


@contextlib.contextmanager
def taken_port() -> Iterator[int]:
    """A port another process listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def _tenants(url: str) -> list[str]:
    async def read() -> list[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return list((await connection.execute(text("SELECT slug FROM tenants"))).scalars())
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_up_refuses_a_taken_api_port_before_it_starts_anything(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                empty_database: str, redis_url: str) -> None:
    new_home = tmp_path / "new-home"
    monkeypatch.setenv("GIVFLEET_HOME", str(new_home))
    monkeypatch.setenv("GIVFLEET_DATABASE_URL", empty_database)
    monkeypatch.setenv("GIVFLEET_REDIS_URL", redis_url)
    monkeypatch.setenv("GIVFLEET_SIMULATOR__PORT", str(free_port()))
    with taken_port() as port:
        result = CliRunner().invoke(app, ["up", "--port", str(port)])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        f"error: 127.0.0.1:{port} is already in use (the API's port: --port or GIVFLEET_API__PORT changes it)"]
    assert _tables(empty_database) == [], "nothing may be migrated or created before the API's port is known free"
    assert not new_home.exists(), "nothing may be written to the home before the API's port is known free"


@pytest.mark.usefixtures("cli_env")
def test_api_refuses_a_taken_port_in_one_line() -> None:
    with taken_port() as port:
        result = CliRunner().invoke(app, ["api", "--port", str(port)])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        f"error: 127.0.0.1:{port} is already in use (the API's port: --port or GIVFLEET_API__PORT changes it)"]


def test_up_refuses_a_taken_simulator_port_before_it_serves_anything(monkeypatch: pytest.MonkeyPatch,
                                                                      empty_database: str, redis_url: str) -> None:
    monkeypatch.setenv("GIVFLEET_DATABASE_URL", empty_database)
    monkeypatch.setenv("GIVFLEET_REDIS_URL", redis_url)
    with taken_port() as port:
        monkeypatch.setenv("GIVFLEET_SIMULATOR__PORT", str(port))
        get_settings.cache_clear()
        result = CliRunner().invoke(app, ["up", "--port", str(free_port())])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        f"error: 127.0.0.1:{port} is already in use (the demo simulator's port: GIVFLEET_SIMULATOR__PORT changes it, "
        "GIVFLEET_SIMULATOR__ENABLED=false turns the simulator off)"]
    assert _tenants(empty_database) == [], "no demo tenant, nothing served, while the simulator cannot run"


def test_up_with_a_real_credential_does_not_need_the_simulators_port(
        monkeypatch: pytest.MonkeyPatch, empty_database: str, redis_url: str, redis_namespace: str) -> None:
    """The simulator is off while a tenant has a real credential (and none points at the simulator): a port it
    would have used may be taken by anything."""
    env = {**{name: value for name, value in os.environ.items() if not name.startswith("GIVFLEET_")},
           "GIVFLEET_HOME": os.environ["GIVFLEET_HOME"], "GIVFLEET_DATABASE_URL": empty_database,
           "GIVFLEET_REDIS_URL": redis_url, "GIVFLEET_REDIS__NAMESPACE": f"{redis_namespace}-up",
           "GIVFLEET_GIVENERGY__BASE_URL": "http://127.0.0.1:1/v1",  # the real cloud is never asked
           "GIVFLEET_API__PORT": str(free_port())}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    runner = CliRunner()
    for command, given in ((["migrate", "upgrade"], None), (["tenant", "create", "acme"], None),
                           (["credential", "add", "--tenant", "acme", "--no-check", "--token-file", "-"], "a-token")):
        done = runner.invoke(app, command, input=given)
        assert done.exit_code == 0, done.output
    with taken_port() as port:
        up = Up.start({**env, "GIVFLEET_SIMULATOR__PORT": str(port)})
        try:
            up.wait_ready()
        finally:
            assert up.stop(signal.SIGINT) == 0, up.output
    assert "Upstreams: acme -> GivEnergy Cloud" in up.output
    assert "Simulated GivEnergy Cloud" not in up.output
    assert _tenants(empty_database) == ["acme"]


async def test_a_port_taken_after_ups_check_is_a_startup_error_not_uvicorns_exit() -> None:
    """Between `up`'s port check and the server's bind (migrations, embedded servers), another process may take
    the port: uvicorn then exits (SystemExit 3, a traceback); `up` must say it in one line instead."""
    async def nothing(scope: object, receive: object, send: object) -> None:
        return None

    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = QuietServer(uvicorn.Config(nothing, host="127.0.0.1", port=port, log_config=None, lifespan="off"))

        with pytest.raises(StartupError, match=f"could not listen on 127.0.0.1:{port}"):
            await start_server(server, "API")
