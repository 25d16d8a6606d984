"""A request body that stalls (a chunked upload that stops, a Content-Length larger than what is sent) is
answered 408 after ``api.body_timeout_seconds``, instead of holding the connection and its handler."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from service.app import create_app
from service.core.roles import Role
from service.runtime import Resources
from service.settings import ApiSettings, Settings
from tests.conftest import running
from tests.tenants.factories import committed_tenant

pytestmark = pytest.mark.usefixtures("clean_db")


async def stalled_request(app: Any, path: str, key: str, *, trickle: bool = False) -> tuple[int, dict[str, Any]]:
    """Send the first chunk of a body, then nothing (or, trickling, one byte every 50 ms for ever); return the
    status and body the app answers."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"givfleet.test"), (b"content-type", b"application/json"),
                         (b"content-length", b"1000"), (b"authorization", f"Bearer {key}".encode())],
             "client": ("127.0.0.1", 5000), "server": ("givfleet.test", 80)}
    chunks = [{"type": "http.request", "body": b'{"query": "{ viewer', "more_body": True}]
    never = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if chunks:
            return chunks.pop()
        if trickle:  # a slow client: each byte comes well within the timeout, the body never ends
            await asyncio.sleep(0.05)
            return {"type": "http.request", "body": b" ", "more_body": True}
        await never.wait()  # the client went quiet
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body)


@pytest.mark.parametrize("trickle", [False, True], ids=["stalled", "trickled"])
@pytest.mark.parametrize("path", ["/graphql", "/api/v1/sync-runs"])
async def test_a_stalled_body_is_answered_408(test_settings: Settings, resources: Resources, path: str,
                                              trickle: bool) -> None:
    tenant = await committed_tenant(resources, Role.OPERATOR)
    settings = test_settings.model_copy(update={"api": ApiSettings(body_timeout_seconds=0.2)})
    app = create_app(settings, resources)
    async with running(app):
        status, body = await stalled_request(app, path, tenant.key, trickle=trickle)
    assert status == 408
    text = json.dumps(body)
    assert "did not arrive within 0.2 s" in text
