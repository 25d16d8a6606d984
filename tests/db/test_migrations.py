"""The migrations build the schema the models describe, and can be undone and redone."""

from __future__ import annotations

import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
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


async def test_0022_marks_the_demo_keys_up_issued_before_it(server_urls: tuple[str, str]) -> None:
    """After the upgrade, `up` neither shows a second demo admin key to a home it showed one to, nor takes a
    user's key named "demo admin" for it."""
    name = f"givfleet_migrations_{uuid.uuid4().hex[:12]}"
    url = await create_database(server_urls[0], name)
    engine = create_async_engine(url)
    issued, users = uuid.uuid4(), uuid.uuid4()
    try:
        await migrate.upgrade(url, "0021")
        async with engine.begin() as connection:
            tenant = await connection.scalar(text(
                "INSERT INTO tenants (id, slug, name, timezone, status) "
                "VALUES (gen_random_uuid(), 'demo', 'Demo', 'UTC', 'active') RETURNING id"))
            for key_id, actor, prefix in ((issued, "givfleet-up", "gvf_a"), (users, "cli", "gvf_b")):
                await connection.execute(text(
                    "INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash, role) "
                    "VALUES (:id, :tenant, 'demo admin', :prefix, :hash, 'admin')"),
                    {"id": key_id, "tenant": tenant, "prefix": prefix, "hash": bytes(32)})
                await connection.execute(text(
                    "INSERT INTO audit_events (id, tenant_id, actor, action, target_type, target_id, details) "
                    "VALUES (gen_random_uuid(), :tenant, :actor, 'apikey.create', 'api_key', :target, '{}')"),
                    {"tenant": tenant, "actor": actor, "target": str(key_id)})
        await migrate.upgrade(url)
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT id, demo_key FROM api_keys"))
            marked = {key_id: demo_key for key_id, demo_key in rows}
        assert marked == {issued: True, users: False}
    finally:
        await engine.dispose()
        await drop_database(server_urls[0], name)
