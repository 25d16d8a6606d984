"""Engine and session factories.

Dead connections: a connection is pinged at checkout only when it sat idle in the pool for longer than
``db.idle_ping_seconds`` (a firewall or a server restart may have closed it meanwhile), not at every checkout
(three round trips each); a dead one is replaced before anyone uses it. A connection that dies while busy fails
the statement it was running (answered 503 like any outage), and SQLAlchemy then drops the whole pool, so the
next checkouts get fresh connections.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from service.settings import DatabaseSettings

_IDLE_SINCE = "givfleet.idle_since"


def create_engine(url: str, settings: DatabaseSettings | None = None) -> AsyncEngine:
    """An asyncpg engine for ``url`` sized by ``settings``."""
    settings = settings or DatabaseSettings()
    engine = create_async_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        echo=settings.echo,
    )
    ping_when_idle(engine, settings.idle_ping_seconds)
    return engine


def ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Ping a connection at checkout if it was idle in the pool for ``idle_seconds`` or longer."""
    pool, dialect = engine.sync_engine.pool, engine.sync_engine.dialect

    def remember_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as exc:  # whatever the ping raised, the connection is unusable
            raise DisconnectionError("a pooled connection died while idle") from exc
        if not alive:
            raise DisconnectionError("a pooled connection died while idle")

    event.listen(pool, "checkin", remember_checkin)
    event.listen(pool, "checkout", ping_if_idle)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (``expire_on_commit=False``)."""
    return async_sessionmaker(engine, expire_on_commit=False)
