"""Liveness, readiness and metrics."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from service.app import create_app
from service.settings import Settings
from tests.conftest import http_client


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
