"""Liveness, readiness and metrics."""

from __future__ import annotations

import gc
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.app import GC_THRESHOLDS, create_app
from service.db import migrate
from service.settings import Settings
from tests.conftest import create_database, drop_database, http_client


async def test_healthz_answers(api_client: httpx.AsyncClient) -> None:
    response = await api_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ready_when_database_and_redis_answer(api_client: httpx.AsyncClient) -> None:
    response = await api_client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_readyz_names_what_is_down(test_settings: Settings) -> None:
    broken = test_settings.model_copy(update={
        "database_url": SecretStr("postgresql+asyncpg://nobody@127.0.0.1:1/nothing"),
        "redis_url": SecretStr("redis://127.0.0.1:1/0"),
    })
    async with http_client(create_app(broken)) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("unreachable")
    assert body["checks"]["redis"].startswith("unreachable")


@pytest.fixture
async def empty_database(server_urls: tuple[str, str]) -> AsyncIterator[str]:
    """A database of its own, not migrated."""
    name = f"givfleet_readyz_{uuid.uuid4().hex[:12]}"
    url = await create_database(server_urls[0], name)
    try:
        yield url
    finally:
        await drop_database(server_urls[0], name)


async def _readiness(settings: Settings, database_url: str) -> httpx.Response:
    app = create_app(settings.model_copy(update={"database_url": SecretStr(database_url)}))
    async with http_client(app) as client:
        return await client.get("/readyz")


async def test_readyz_fails_until_the_database_is_migrated_to_head(test_settings: Settings, empty_database: str
                                                                    ) -> None:
    never_migrated = await _readiness(test_settings, empty_database)
    assert never_migrated.status_code == 503
    assert never_migrated.json()["checks"]["database"].startswith("not migrated: schema at no revision")

    head = migrate.head_revision()
    await migrate.upgrade(empty_database, "0003")
    behind = await _readiness(test_settings, empty_database)
    assert behind.status_code == 503
    assert behind.json()["checks"] == {
        "database": f"not migrated: schema at 0003, this release needs {head} (run 'givfleet migrate upgrade')",
        "redis": "ok",
    }

    await migrate.upgrade(empty_database)
    migrated = await _readiness(test_settings, empty_database)
    assert migrated.status_code == 200
    assert migrated.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_readyz_stays_ready_when_a_newer_release_migrated_ahead(test_settings: Settings, empty_database: str
                                                                      ) -> None:
    """During a rolling upgrade the new release's migration runs first; the old pods must keep serving."""
    await migrate.upgrade(empty_database)
    engine = create_async_engine(empty_database)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_a_newer_release'"))
    finally:
        await engine.dispose()
    response = await _readiness(test_settings, empty_database)
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


async def test_every_response_carries_a_request_id(api_client: httpx.AsyncClient) -> None:
    generated = await api_client.get("/healthz")
    assert len(generated.headers["x-request-id"]) >= 16
    echoed = await api_client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"


async def test_metrics_exposes_request_counts(api_client: httpx.AsyncClient) -> None:
    await api_client.get("/readyz")
    response = await api_client.get("/metrics")
    assert response.status_code == 200
    assert "givfleet_http_requests_total" in response.text
    assert 'path="/readyz"' in response.text


async def test_unknown_path_is_a_problem_document_not_a_traceback(api_client: httpx.AsyncClient) -> None:
    response = await api_client.get("/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 404
    assert body["request_id"] == response.headers["x-request-id"]


async def test_start_up_freezes_the_heap_and_makes_collections_rarer(app: Litestar) -> None:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    try:
        async with http_client(app) as client:
            assert (await client.get("/healthz")).status_code == 200
            assert gc.get_freeze_count() > 10_000  # modules, the schema and the app survive start-up
            assert gc.get_threshold() == GC_THRESHOLDS
    finally:  # the rest of the run keeps the collector as it found it
        gc.unfreeze()
        gc.set_threshold(*thresholds)
