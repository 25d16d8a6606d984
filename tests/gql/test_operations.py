"""Every example operation in graphql/operations runs against a seeded mirror with a SQL-statement budget that
does not grow with the fleet (10 vs 1,000 inverters)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.runtime import Resources
from tests.gql.conftest import count_statements, run
from tests.gql.seed import SeededMirror, site_id, subcontractor_id

OPERATIONS = Path(__file__).resolve().parents[2] / "graphql" / "operations"

# Statements per operation: every connection is a page + a count, every relation one batched load.
BUDGETS: dict[str, tuple[int, dict[str, Any]]] = {
    # summary 1; subcontractors page+count 2, children 1; inverters page+count 2, site 1, account 1, parent 1
    "fleet_overview": (9, {"first": 50}),
    # account 1; inverters page+count 2; dongle, site, account, batteries, history 5
    "faulted_inverters_of_subcontractor": (8, {"account": subcontractor_id(0), "first": 50}),
    # site 1; account 1, parent 1, grandparent 1; dongles 1, their inverter 1; inverters 1, batteries, meters,
    # history 3
    "site_tree": (10, {"site": site_id(0)}),
    # summary 1; page + count 2; account 1
    "firmware_distribution": (4, {"targetArm": 450}),
}


# Mutations: their cost is a unit of work. request_sync runs in tests/gql/test_mutations.py, create_campaign in
# tests/campaigns/test_graphql.py (against a simulated fleet).
MUTATIONS = {"request_sync", "create_campaign"}
# Subscriptions: run by tests/gql/test_subscriptions.py (over a WebSocket, one scoped read per change).
SUBSCRIPTIONS = {"alert_changes"}


def test_every_operation_has_a_budget() -> None:
    assert {path.stem for path in OPERATIONS.glob("*.graphql")} == set(BUDGETS) | MUTATIONS | SUBSCRIPTIONS


@pytest.mark.parametrize("name", sorted(BUDGETS))
async def test_operation_statement_budget_is_constant(name: str, resources: Resources, small_fleet: SeededMirror,
                                                      large_fleet: SeededMirror) -> None:
    budget, variables = BUDGETS[name]
    query = (OPERATIONS / f"{name}.graphql").read_text()
    counts = {}
    sizes = {}
    for fleet in (small_fleet, large_fleet):
        with count_statements(resources.engine) as statements:
            result = await run(resources, fleet.tenant_id, query, variables)
        assert result.errors is None, result.errors
        counts[fleet.inverters] = statements.count
        sizes[fleet.inverters] = len(str(result.data))
    assert counts == {10: budget, 1000: budget}, counts
    assert sizes[1000] > sizes[10] or name == "site_tree"  # the big fleet really returned more rows


async def test_fleet_overview_counts_what_was_seeded(resources: Resources, large_fleet: SeededMirror) -> None:
    query = (OPERATIONS / "fleet_overview.graphql").read_text()
    result = await run(resources, large_fleet.tenant_id, query, {"first": 10})
    assert result.errors is None
    summary = result.data["fleetSummary"]
    assert summary["total"] == 1000
    expected: dict[str, int] = {}
    for status in large_fleet.statuses.values():
        expected[status] = expected.get(status, 0) + 1
    assert {b["value"]: b["count"] for b in summary["byStatus"]} == expected
    assert result.data["subcontractors"]["totalCount"] == 3
    assert sum(len(e["node"]["children"]) for e in result.data["subcontractors"]["edges"]) == 1000
    assert result.data["inverters"]["totalCount"] == 1000
    assert len(result.data["inverters"]["edges"]) == 10


async def test_faulted_inverters_of_subcontractor(resources: Resources, large_fleet: SeededMirror) -> None:
    query = (OPERATIONS / "faulted_inverters_of_subcontractor.graphql").read_text()
    expected = sorted(serial for serial in large_fleet.serials_of_subcontractor(1)
                      if large_fleet.statuses[serial] in {"ERROR", "LOST", "WARNING"})
    seen: list[str] = []
    after = None
    while True:
        result = await run(resources, large_fleet.tenant_id, query,
                           {"account": subcontractor_id(1), "first": 25, "after": after})
        assert result.errors is None, result.errors
        page = result.data["inverters"]
        assert page["totalCount"] == len(expected)
        seen += [edge["node"]["serial"] for edge in page["edges"]]
        assert all(edge["node"]["account"]["username"].startswith("customer") for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == expected
    assert len(seen) == len(set(seen))


async def test_site_tree_walks_up_and_down(resources: Resources, small_fleet: SeededMirror) -> None:
    query = (OPERATIONS / "site_tree.graphql").read_text()
    result = await run(resources, small_fleet.tenant_id, query, {"site": site_id(4)})
    assert result.errors is None
    site = result.data["site"]
    assert site["account"]["username"] == "customer4"
    assert site["account"]["parent"]["username"] == "sub1"
    assert site["account"]["parent"]["parent"]["username"] == "installer"
    assert site["dongles"][0]["inverter"]["serial"] == "CE00000004"
    inverter = site["inverters"][0]
    assert [b["position"] for b in inverter["batteries"]] == [0, 1]
    assert inverter["meters"][0]["serialNumber"] == "EM00000004"
    assert inverter["history"][0]["toValue"] == small_fleet.statuses["CE00000004"]


async def test_firmware_distribution(resources: Resources, large_fleet: SeededMirror) -> None:
    query = (OPERATIONS / "firmware_distribution.graphql").read_text()
    result = await run(resources, large_fleet.tenant_id, query, {"targetArm": 449})
    assert result.errors is None
    by_arm = {b["value"]: b["count"] for b in result.data["fleetSummary"]["byFirmwareArm"]}
    assert sum(by_arm.values()) == 1000
    assert result.data["belowTarget"]["totalCount"] == by_arm["449"] + by_arm["318"]
    assert all(int(e["node"]["firmwareArm"]) <= 449 for e in result.data["belowTarget"]["edges"])
