"""Pooled connections: no ping on the hot path, and one the server closed while it sat idle is replaced before
a request can fail on it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from service.db.engine import create_engine
from service.runtime import Resources
from service.settings import DatabaseSettings


async def backend_pid(engine: Any) -> int:
    async with engine.connect() as connection:
        pid: int = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        return pid


async def test_a_connection_closed_while_idle_is_replaced(resources: Resources) -> None:
    engine = create_engine(resources.engine.url.render_as_string(hide_password=False),
                           DatabaseSettings(pool_size=1, max_overflow=0, idle_ping_seconds=0))
    try:
        before = await backend_pid(engine)
        async with resources.engine.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": before})
        assert await backend_pid(engine) != before  # answered on a fresh connection, no error
    finally:
        await engine.dispose()


async def test_a_busy_pool_does_not_ping(resources: Resources, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = create_engine(resources.engine.url.render_as_string(hide_password=False),
                           DatabaseSettings(pool_size=1, max_overflow=0))
    pings: list[object] = []
    original = engine.sync_engine.dialect.do_ping
    monkeypatch.setattr(engine.sync_engine.dialect, "do_ping", lambda connection: pings.append(connection)
                        or original(connection))
    try:
        first = await backend_pid(engine)
        for _ in range(5):
            assert await backend_pid(engine) == first
        assert pings == []
    finally:
        await engine.dispose()
