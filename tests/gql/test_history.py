"""Inverter history: newest first, limited per inverter in SQL, one statement for a whole page."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import insert

from service.db.models import mirror as m
from service.runtime import Resources
from tests.gql.conftest import count_statements, run
from tests.gql.seed import NOW, SeededMirror, inverter_serial


async def test_history_is_newest_first_and_limited(resources: Resources, small_fleet: SeededMirror) -> None:
    serial = inverter_serial(2)
    async with resources.engine.begin() as connection:
        await connection.execute(insert(m.InverterChange), [
            {"id": uuid.uuid4(), "tenant_id": small_fleet.tenant_id, "inverter_serial": serial,
             "kind": m.InverterChangeKind.FIRMWARE_ARM, "from_value": str(400 + i), "to_value": str(401 + i),
             "observed_at": NOW - timedelta(days=10 - i), "sync_run_id": None}
            for i in range(5)])
    query = """{ inverters(first: 10) { edges { node { serial history(limit: 3) { kind toValue observedAt } } } } }"""
    with count_statements(resources.engine) as statements:
        result = await run(resources, small_fleet.tenant_id, query)
    assert result.errors is None
    assert statements.count == 3  # page, count, one windowed history load
    by_serial = {e["node"]["serial"]: e["node"]["history"] for e in result.data["inverters"]["edges"]}
    history = by_serial[serial]
    assert len(history) == 3
    assert [h["kind"] for h in history] == ["status", "firmware_arm", "firmware_arm"]
    assert [h["toValue"] for h in history[1:]] == ["405", "404"]
    assert all(len(h) == 1 for s, h in by_serial.items() if s != serial)
