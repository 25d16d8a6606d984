"""``statusIn``: case-insensitive, and comparing the very expression an index holds."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql

from service.db.models.mirror import Inverter
from service.mirror.queries import InverterFilter, ReadScope
from service.runtime import Resources
from tests.gql.conftest import run
from tests.gql.seed import NOW, SeededMirror


async def test_status_in_is_case_insensitive(resources: Resources, small_fleet: SeededMirror) -> None:
    query = """query($s: [String!]) { inverters(filter: {statusIn: $s}, first: 100) {
        totalCount edges { node { serial } } } }"""
    result = await run(resources, small_fleet.tenant_id, query, {"s": ["error", "Lost"]})
    expected = sorted(serial for serial, status in small_fleet.statuses.items() if status in ("ERROR", "LOST"))
    assert expected
    assert [edge["node"]["serial"] for edge in result.data["inverters"]["edges"]] == expected
    assert result.data["inverters"]["totalCount"] == len(expected)


async def test_status_in_compares_the_very_expression_the_folded_status_index_holds(
    resources: Resources, small_fleet: SeededMirror
) -> None:
    conditions = InverterFilter(status_in=["ERROR"]).conditions(ReadScope.of(small_fleet.tenant_id, None), NOW)
    statement = select(Inverter.id).where(*conditions).compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    async with resources.engine.connect() as connection:
        index = (await connection.execute(text(
            "SELECT pg_get_indexdef('ix_mirror_inverters_tenant_id_status_folded'::regclass)"))).scalar_one()
        await connection.execute(text("SET enable_seqscan = off"))
        plan = "\n".join((await connection.execute(text(f"EXPLAIN {statement}"))).scalars())
    indexed = index.split("(tenant_id, ", 1)[1].rsplit(")", 1)[0]
    assert indexed == "upper((COALESCE(status, ''::character varying))::text)", index
    # Which index the planner picks on a ten-row table is a matter of its statistics (machine and embedded
    # PostgreSQL differ): an Index Cond on this index, or a Filter after another. Either way, what makes this
    # index usable on a real fleet is that the filter compares exactly the expression it holds.
    assert f"{indexed} = 'ERROR'::text" in plan, plan
