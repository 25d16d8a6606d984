"""A dependency outage (PostgreSQL or Redis unreachable) is a 503 with Retry-After and one log line, not a 500
with a traceback. The outage is real: the app is pointed at a port nothing listens on."""

from __future__ import annotations

import io
import json
import socket

import pytest
from pydantic import SecretStr

from service.app import create_app
from service.runtime import Resources
from service.settings import Settings
from tests.api.test_admin import captured_logs  # noqa: F401 (fixture)
from tests.conftest import http_client
from tests.tenants.factories import committed_tenant

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


def outage_lines(logs: io.StringIO) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if "unavailable" in str(line.get("event")) or line.get("level") == "error"]


async def test_database_down_is_503_with_retry_after(test_settings: Settings, closed_port: int,
                                                     captured_logs: io.StringIO) -> None:  # noqa: F811
    settings = test_settings.model_copy(update={
        "database_url": SecretStr(f"postgresql://postgres@127.0.0.1:{closed_port}/nowhere")})
    async with http_client(create_app(settings)) as client:
        rest = await client.get("/api/v1/me", headers={"Authorization": "Bearer gvf_aaaaaaaaaa_anything"})
        graphql = await client.post("/graphql", json={"query": "{ viewer { role } }"},
                                    headers={"Authorization": "Bearer gvf_aaaaaaaaaa_anything"})
    for response in (rest, graphql):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert response.json()["code"] == "DEPENDENCY_UNAVAILABLE"
        assert "database is unreachable" in response.json()["detail"]
    logged = outage_lines(captured_logs)
    assert [line["event"] for line in logged] == ["request.dependency_unavailable"] * 2, logged
    assert "Traceback" not in captured_logs.getvalue()


async def test_redis_down_is_503_with_retry_after(test_settings: Settings, resources: Resources, closed_port: int,
                                                  captured_logs: io.StringIO) -> None:  # noqa: F811
    tenant = await committed_tenant(resources)
    settings = test_settings.model_copy(update={"redis_url": SecretStr(f"redis://127.0.0.1:{closed_port}/0")})
    async with http_client(create_app(settings)) as client:
        served = await client.get("/api/v1/me", headers=tenant.headers)  # needs no Redis
        refused = await client.get("/api/v1/me", headers={"Authorization": "Bearer gvf_aaaaaaaaaa_guess"})
    assert served.status_code == 200
    assert refused.status_code == 503, refused.text  # counting the failed attempt needs Redis
    assert "redis is unreachable" in refused.json()["detail"]
    assert refused.headers["retry-after"] == "5"
    assert [line["event"] for line in outage_lines(captured_logs)] == ["request.dependency_unavailable"]
    assert "Traceback" not in captured_logs.getvalue()
