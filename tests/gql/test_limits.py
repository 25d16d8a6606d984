"""The cost estimate: what it counts, and that the example operations stay well under the limit."""

from __future__ import annotations

from pathlib import Path

from graphql import parse

from service.gql.limits import MAX_COST, operation_cost

OPERATIONS = Path(__file__).resolve().parents[2] / "graphql" / "operations"


def test_cost_counts_rows_per_page_and_nested_lists() -> None:
    small = operation_cost(parse("{ inverters(first: 10) { edges { node { serial } } } }"), None, None)
    large = operation_cost(parse("{ inverters(first: 100) { edges { node { serial } } } }"), None, None)
    assert large > 9 * small
    nested = operation_cost(parse("{ inverters(first: 10) { edges { node { batteries { serial } } } } }"), None, None)
    assert nested > small
    by_variable = operation_cost(parse("query($n: Int) { inverters(first: $n) { edges { node { serial } } } }"),
                                 None, {"n": 100})
    assert by_variable == large


def test_fragments_are_expanded_and_introspection_is_free() -> None:
    plain = operation_cost(parse("{ inverters(first: 5) { edges { node { serial model } } } }"), None, None)
    fragment = operation_cost(parse(
        "{ inverters(first: 5) { edges { node { ...F } } } } fragment F on Inverter { serial model }"), None, None)
    assert plain == fragment
    assert operation_cost(parse("{ __schema { types { name fields { name } } } }"), None, None) == 0


def test_example_operations_are_well_within_the_limit() -> None:
    for path in OPERATIONS.glob("*.graphql"):
        assert operation_cost(parse(path.read_text()), None, {"first": 100}) < MAX_COST / 2, path.name
