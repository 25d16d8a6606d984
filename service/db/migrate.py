"""Alembic, driven from inside a running event loop (the CLI and the tests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at ``migrations/``; ``connection`` is handed to env.py when given."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision``."""
    await _run(url, lambda connection: command.upgrade(alembic_config(connection), revision))


async def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (e.g. ``base`` or ``-1``)."""
    await _run(url, lambda connection: command.downgrade(alembic_config(connection), revision))


async def current(url: str) -> tuple[str | None, str | None]:
    """The database's revision and the newest revision in ``migrations/``."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    revisions: list[str | None] = []
    await _run(url, lambda connection: revisions.append(MigrationContext.configure(connection).get_current_revision()))
    return revisions[0], head


async def _run(url: str, action: Callable[[Connection], object]) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(action)
    finally:
        await engine.dispose()
