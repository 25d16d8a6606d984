"""The migrations build the schema the models describe, and can be undone and redone."""

from __future__ import annotations

import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import create_async_engine

import service.db.models  # noqa: F401  (registers every table)
from service.db import migrate
from service.db.base import Base
from tests.conftest import create_database, drop_database


def _schema_diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_upgrade_downgrade_upgrade_and_models_match(server_urls: tuple[str, str]) -> None:
    name = f"givfleet_migrations_{uuid.uuid4().hex[:12]}"
    url = await create_database(server_urls[0], name)
    engine = create_async_engine(url)
    try:
        await migrate.upgrade(url)
        async with engine.connect() as connection:
            assert set(Base.metadata.tables) <= await connection.run_sync(_tables)

        await migrate.downgrade(url, "base")
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) <= {"alembic_version"}

        await migrate.upgrade(url)
        revision, head = await migrate.current(url)
        assert revision == head
        async with engine.connect() as connection:
            assert await connection.run_sync(_schema_diff) == []
    finally:
        await engine.dispose()
        await drop_database(server_urls[0], name)
