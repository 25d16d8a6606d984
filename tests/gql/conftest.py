"""Fixtures for the GraphQL tests: seeded mirrors (committed, per module), a statement counter, and a helper
that runs an operation as a given caller."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import delete, event
from sqlalchemy.ext.asyncio import AsyncEngine

from service.core.principal import Principal
from service.core.roles import Role
from service.core.tenancy import TenantId
from service.db.models.tenant import Tenant
from service.gql.context import build_context
from service.gql.schema import schema
from service.runtime import Resources
from tests.gql.seed import NOW, SeededMirror, seed_mirror


@dataclass
class Statements:
    """SQL statements sent while counting."""

    sql: list[str]

    @property
    def count(self) -> int:
        return len(self.sql)


@contextmanager
def count_statements(engine: AsyncEngine) -> Iterator[Statements]:
    """Count every statement the engine sends (all sessions, all pool connections) inside the block."""
    seen = Statements([])

    def before_cursor_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.sql.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before_cursor_execute)


async def seed_committed(resources: Resources, inverters: int, **kwargs: Any) -> SeededMirror:
    """Seed and commit a mirror (HTTP requests and loaders use sessions of their own)."""
    async with resources.engine.begin() as connection:
        return await seed_mirror(connection, inverters, **kwargs)


async def drop_tenant(resources: Resources, tenant_id: uuid.UUID) -> None:
    """Delete a seeded tenant and (by cascade) its mirror."""
    async with resources.engine.begin() as connection:
        await connection.execute(delete(Tenant).where(Tenant.id == tenant_id))


@pytest.fixture(scope="module")
async def small_fleet(resources: Resources) -> AsyncIterator[SeededMirror]:
    """10 inverters under 3 sub-contractors."""
    seeded = await seed_committed(resources, 10)
    yield seeded
    await drop_tenant(resources, seeded.tenant_id)


@pytest.fixture(scope="module")
async def large_fleet(resources: Resources) -> AsyncIterator[SeededMirror]:
    """1,000 inverters under 3 sub-contractors, with the same upstream keys as ``small_fleet``'s first ten."""
    seeded = await seed_committed(resources, 1000)
    yield seeded
    await drop_tenant(resources, seeded.tenant_id)


async def run(resources: Resources, tenant_id: TenantId, query: str, variables: dict[str, Any] | None = None, *,
              role: Role = Role.VIEWER, restricted_account_id: str | None = None, **context: Any) -> Any:
    """Execute ``query`` as a caller of ``tenant_id`` (fresh context and dataloaders, like one request)."""
    principal = Principal(tenant_id=tenant_id, role=role, restricted_account_id=restricted_account_id)
    ctx = build_context(principal, resources.session_factory, request_id="req-test", now=NOW, **context)
    return await schema.execute(query, variable_values=variables, context_value=ctx)


@dataclass
class KeyedFleet:
    """A committed tenant with a mirror and API keys of several kinds."""

    mirror: SeededMirror
    keys: dict[str, str]

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}


async def keyed_fleet(resources: Resources, inverters: int = 30) -> KeyedFleet:
    """Seed a mirror and mint keys: viewer, operator, and a viewer/operator restricted to sub-contractor 0."""
    from tests.gql.seed import subcontractor_id
    from tests.tenants.factories import make_key

    mirror = await seed_committed(resources, inverters)
    keys: dict[str, str] = {}
    async with resources.session_factory() as session, session.begin():
        for name, role, restricted in (("viewer", Role.VIEWER, None), ("operator", Role.OPERATOR, None),
                                       ("sub_viewer", Role.VIEWER, str(subcontractor_id(0))),
                                       ("sub_operator", Role.OPERATOR, str(subcontractor_id(0)))):
            keys[name], _ = await make_key(session, mirror.tenant_id, role, restricted_account_id=restricted)
    return KeyedFleet(mirror, keys)


@pytest.fixture(scope="module")
async def fleet_with_keys(resources: Resources) -> AsyncIterator[KeyedFleet]:
    """30 inverters and keys (see :func:`keyed_fleet`)."""
    fleet = await keyed_fleet(resources)
    yield fleet
    await drop_tenant(resources, fleet.mirror.tenant_id)


@pytest.fixture(scope="module")
async def other_tenant(resources: Resources) -> AsyncIterator[KeyedFleet]:
    """Another tenant whose mirror has the very same upstream ids and serials."""
    fleet = await keyed_fleet(resources)
    yield fleet
    await drop_tenant(resources, fleet.mirror.tenant_id)


@pytest.fixture
async def forget_auth_failures(resources: Resources) -> AsyncIterator[None]:
    """For tests that present bad keys: don't leave this client throttled for the tests that follow."""
    yield
    pattern = f"{resources.settings.redis.namespace}:auth-failures:*"
    keys = [key async for key in resources.redis.scan_iter(match=pattern)]
    if keys:
        await resources.redis.delete(*keys)
