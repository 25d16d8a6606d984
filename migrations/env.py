"""Alembic environment: async engine, URL from givfleet's settings, models from ``service.db.models``.

Callers already inside an event loop (the CLI, tests) pass an open connection through
``config.attributes["connection"]``; otherwise a fresh async engine is made from the configured URL.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import async_engine_from_config

import service.db.models  # noqa: F401  (registers every table)
from service.db.base import Base
from service.settings import get_settings

config = context.config
target_metadata = Base.metadata


def _configure_and_run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    url = config.get_main_option("sqlalchemy.url") or get_settings().configured_database_url()
    if not url:
        raise RuntimeError("no database URL: set GIVFLEET_DATABASE_URL or run `givfleet migrate`")
    engine = async_engine_from_config({"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_configure_and_run)
    await engine.dispose()


def run_migrations_online() -> None:
    """Run against the connection we were given, or against the configured database."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run against a database")
run_migrations_online()
