"""Inverter history: newest first, limited per inverter in SQL, one statement for a whole page."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import timedelta

import pytest
from sqlalchemy import insert

from service.db.models import mirror as m
from service.mirror.queries import FleetReader
from service.runtime import Resources
from tests.gql.conftest import count_statements, run
from tests.gql.seed import NOW, SeededMirror, inverter_serial


@pytest.fixture
def history_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every ``latest_changes`` call: (the limit per inverter asked, the rows read)."""
    reads: list[tuple[int, int]] = []
    original = FleetReader.latest_changes

    async def spy(self: FleetReader, serials: Iterable[str], per_inverter: int) -> list[m.InverterChange]:
        rows = await original(self, serials, per_inverter)
        reads.append((per_inverter, len(rows)))
        return rows

    monkeypatch.setattr(FleetReader, "latest_changes", spy)
    return reads


async def _add_firmware_changes(resources: Resources, fleet: SeededMirror, serial: str) -> None:
    async with resources.engine.begin() as connection:
        await connection.execute(insert(m.InverterChange), [
            {"id": uuid.uuid4(), "tenant_id": fleet.tenant_id, "inverter_serial": serial,
             "kind": m.InverterChangeKind.FIRMWARE_ARM, "from_value": str(400 + i), "to_value": str(401 + i),
             "observed_at": NOW - timedelta(days=10 - i), "sync_run_id": None}
            for i in range(5)])


async def test_history_is_newest_first_and_limited(
    resources: Resources, small_fleet: SeededMirror, history_reads: list[tuple[int, int]]
) -> None:
    serial = inverter_serial(2)
    await _add_firmware_changes(resources, small_fleet, serial)
    query = """{ inverters(first: 10) { edges { node { serial history(limit: 3) { kind toValue observedAt } } } } }"""
    with count_statements(resources.engine) as statements:
        result = await run(resources, small_fleet.tenant_id, query)
    assert result.errors is None
    assert statements.count == 3  # page, count, one windowed history load
    # The limit is the SQL's: no row is read beyond those returned.
    assert history_reads == [(3, sum(len(e["node"]["history"]) for e in result.data["inverters"]["edges"]))]
    by_serial = {e["node"]["serial"]: e["node"]["history"] for e in result.data["inverters"]["edges"]}
    history = by_serial[serial]
    assert len(history) == 3
    assert [h["kind"] for h in history] == ["status", "firmware_arm", "firmware_arm"]
    assert [h["toValue"] for h in history[1:]] == ["405", "404"]
    assert all(len(h) == 1 for s, h in by_serial.items() if s != serial)


async def test_each_distinct_history_limit_is_one_load_reading_only_what_it_returns(
    resources: Resources, small_fleet: SeededMirror, history_reads: list[tuple[int, int]]
) -> None:
    serial = inverter_serial(3)  # the fleet is the module's: not the inverter the other test adds history to
    await _add_firmware_changes(resources, small_fleet, serial)
    query = """{ inverters(first: 10) { edges { node { serial
        newest: history(limit: 1) { toValue } some: history(limit: 4) { toValue } again: history(limit: 4) { kind }
        none: history(limit: 0) { kind } } } } }"""
    with count_statements(resources.engine) as statements:
        result = await run(resources, small_fleet.tenant_id, query)
    assert result.errors is None
    assert statements.count == 4  # page, count, one windowed history load per distinct positive limit
    nodes = {e["node"]["serial"]: e["node"] for e in result.data["inverters"]["edges"]}
    # One read per distinct limit, asking that limit and reading only the rows returned.
    assert sorted(history_reads) == [
        (1, sum(len(node["newest"]) for node in nodes.values())),
        (4, sum(len(node["some"]) for node in nodes.values())),
    ]
    assert all(len(node["newest"]) == 1 for node in nodes.values())
    assert len(nodes[serial]["some"]) == 4
    assert [h["toValue"] for h in nodes[serial]["newest"]] == [nodes[serial]["some"][0]["toValue"]]
    assert [h["toValue"] for h in nodes[serial]["some"][1:]] == ["405", "404", "403"]
    assert len(nodes[serial]["again"]) == 4
    assert all(node["none"] == [] for node in nodes.values())


async def test_an_out_of_range_nested_limit_fails_its_field_only(resources: Resources, small_fleet: SeededMirror
                                                                 ) -> None:
    """``b`` fails on its history limit while ``a`` waits for the very same site (one shared loader future):
    ``a`` is answered, ``b`` gets the error a top-level out-of-range argument gets, and nothing is cancelled."""
    serial = inverter_serial(2)
    query = """query($s: String!) { a: inverter(serial: $s) { serial site { name } }
        b: inverter(serial: $s) { history(limit: -2) { kind } site { name } } }"""
    result = await run(resources, small_fleet.tenant_id, query, {"s": serial})
    assert result.data == {"a": {"serial": serial, "site": {"name": "Home 2"}}, "b": None}
    [error] = result.errors
    assert error.path == ["b", "history"]
    top_level = await run(resources, small_fleet.tenant_id, "{ inverters(first: -2) { totalCount } }")
    assert error.extensions["code"] == top_level.errors[0].extensions["code"] == "BAD_USER_INPUT"
    assert error.message == "limit must be an integer from 0 to 200, got -2"
