"""Alembic, driven from inside a running event loop (the CLI and the tests)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
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
    revisions: list[str | None] = []
    await _run(url, lambda connection: revisions.append(revision_of(connection)))
    return revisions[0], head_revision()


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())  # read once: the files do not change under a process


def head_revision() -> str | None:
    """The newest revision in ``migrations/``."""
    return _scripts().get_current_head()


def is_behind(revision: str | None) -> bool:
    """Whether a database at ``revision`` lacks migrations this code needs: never migrated, or at an older
    revision of ours.

    A revision this code does not know belongs to a newer release whose migration ran first (during a rolling
    upgrade the old pods keep serving: each migration must work with the release before it).
    """
    if revision is None:
        return True
    return revision in _known_revisions() and revision != head_revision()


@lru_cache(maxsize=1)
def _known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _scripts().walk_revisions())


def revision_of(connection: Connection) -> str | None:
    """The revision the database behind ``connection`` is migrated to (``None``: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


async def _run(url: str, action: Callable[[Connection], object]) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(action)
    finally:
        await engine.dispose()
