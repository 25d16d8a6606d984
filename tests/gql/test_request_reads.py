"""One pooled connection per GraphQL operation: root fields and every loader batch share it, and it is back in
the pool when the operation ends."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from service.runtime import Resources
from tests.gql.conftest import count_statements, run
from tests.gql.seed import SeededMirror

PAGE = """{ inverters(first: 10) { totalCount edges { node { serial site { name } account { username
    parent { username } } batteries { serial } meters { address } history(limit: 2) { kind } } } }
    sites(first: 3) { edges { node { name } } } }"""


async def test_an_operation_reads_on_one_connection_and_returns_it(resources: Resources,
                                                                  small_fleet: SeededMirror) -> None:
    pool = resources.engine.sync_engine.pool
    checkouts: list[Any] = []

    def on_checkout(dbapi_connection: Any, *_: Any) -> None:
        checkouts.append(dbapi_connection)

    event.listen(pool, "checkout", on_checkout)
    try:
        in_use = pool.checkedout()  # type: ignore[attr-defined]
        with count_statements(resources.engine) as statements:
            result = await run(resources, small_fleet.tenant_id, PAGE)
        assert result.errors is None
        assert len(result.data["inverters"]["edges"]) == 10
        assert statements.count >= 7  # two pages, their counts, five relation batches
        assert len(checkouts) == 1
        assert pool.checkedout() == in_use  # type: ignore[attr-defined]
    finally:
        event.remove(pool, "checkout", on_checkout)
