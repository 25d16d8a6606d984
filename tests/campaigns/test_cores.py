"""Property tests of the campaign's pure cores: wave planning, outcome classification, rollback grouping, values."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, time

from hypothesis import given
from hypothesis import strategies as st

from service.campaigns import outcomes
from service.campaigns.outcomes import Answer
from service.campaigns.values import ValueKind, canonical, check, same, wire
from service.campaigns.waves import chunks, request_cost, wave_sizes
from service.campaigns.window import in_window, next_opening
from service.db.models.campaign import TargetState

CODES = st.sampled_from([-1, -2, -3, -4, -5, -6, -7])
VALUES = st.integers(min_value=0, max_value=100).map(str)


@given(total=st.integers(0, 30_000), canary=st.integers(1, 2000), growth=st.floats(0.5, 10),
       largest=st.integers(1, 5000))
def test_waves_cover_every_inverter_once_canary_first_growing_never_above_the_largest(
        total: int, canary: int, growth: float, largest: int) -> None:
    sizes = wave_sizes(total, canary=canary, growth=growth, largest=largest)
    assert sum(sizes) == total
    assert all(1 <= size <= largest for size in sizes)
    if sizes:
        assert sizes[0] == min(canary, largest, total)
        assert all(a <= b for a, b in itertools.pairwise(sizes[:-1]))  # the last takes what is left


@given(items=st.lists(st.integers(), max_size=5000), size=st.integers(1, 1000))
def test_chunks_keep_order_and_never_exceed_the_size(items: list[int], size: int) -> None:
    parts = chunks(items, size)
    assert [item for part in parts for item in part] == items
    assert all(1 <= len(part) <= size for part in parts)


def test_request_cost_of_ten_thousand_in_waves_of_a_thousand_is_thirty() -> None:
    sizes = wave_sizes(10_000, canary=1000, growth=1, largest=1000)
    assert request_cost(sizes, reads_before=True, writes=True, reads_after=True) == 30
    assert request_cost(wave_sizes(2500, canary=10, growth=4, largest=1000), reads_before=True, writes=True,
                        reads_after=False) == 12  # six waves of one chunk: 10, 40, 160, 640, 1000, 650


@given(code=CODES, target=VALUES, previous=VALUES, verify=st.booleans())
def test_a_failed_write_is_never_concluded_as_ready_to_write_again(code: int, target: str, previous: str,
                                                                  verify: bool) -> None:
    step = outcomes.after_write(Answer(code=code, ok=False), target, ValueKind.NUMBER, verify=verify)
    if code in (-1, -5, -6):
        assert step.state is TargetState.UNVERIFIED  # potentially applied: decided by reading
    elif code == -2:
        assert step.state is TargetState.RETRYING  # offline: not applied, a later wave may write it
    else:
        assert step.state is TargetState.FAILED
    assert step.code == code


@given(target=VALUES, previous=VALUES, read=VALUES,
       was=st.sampled_from([TargetState.WRITTEN, TargetState.UNVERIFIED, TargetState.WRITING]))
def test_read_back_classification(target: str, previous: str, read: str, was: TargetState) -> None:
    step = outcomes.after_verify(Answer(value=read), was=was, target=target, previous=previous, written=None,
                                 kind=ValueKind.NUMBER)
    assert step is not None
    if read == target:
        assert step.state is TargetState.APPLIED
    elif read == previous:
        # only an inverter whose write answer was lost (crash) may be written again
        expected = TargetState.READY if was is TargetState.WRITING else TargetState.NOT_APPLIED
        assert step.state is expected
    else:
        assert step.state is TargetState.APPLIED_MODIFIED
    assert step.value == read


@given(code=CODES, was=st.sampled_from([TargetState.WRITTEN, TargetState.UNVERIFIED, TargetState.WRITING]))
def test_a_failed_read_back_decides_nothing(code: int, was: TargetState) -> None:
    assert outcomes.after_verify(Answer(code=code, ok=False), was=was, target="1", previous="2", written=None,
                                 kind=ValueKind.NUMBER) is None


def test_clamped_write_is_applied_modified_once_read_back() -> None:
    written = outcomes.after_write(Answer(value="2600"), "3000", ValueKind.NUMBER, verify=True)
    assert written.state is TargetState.WRITTEN
    step = outcomes.after_verify(Answer(value="2600"), was=TargetState.WRITTEN, target="3000", previous="3000",
                                 written=written.value, kind=ValueKind.NUMBER)
    assert step is not None
    assert step.state is TargetState.APPLIED_MODIFIED


@given(previous=VALUES, target=VALUES, skip=st.booleans())
def test_already_set_is_skipped_only_when_asked(previous: str, target: str, skip: bool) -> None:
    step = outcomes.after_read(Answer(value=previous), target, ValueKind.NUMBER, skip_if_set=skip)
    if skip and previous == target:
        assert (step.state, step.reason) == (TargetState.SKIPPED, "already_set")
    else:
        assert step.state is TargetState.READY
    assert step.value == previous


@given(pairs=st.dictionaries(st.text("ABCDEF0123456789", min_size=10, max_size=10), VALUES, max_size=3000))
def test_rollback_is_one_write_per_distinct_value_per_thousand(pairs: dict[str, str]) -> None:
    groups = outcomes.rollback_groups(pairs.items())
    assert sorted(serial for _, serials in groups for serial in serials) == sorted(pairs)
    for value, serials in groups:
        assert 1 <= len(serials) <= 1000
        assert all(pairs[serial] == value for serial in serials)
    distinct = {value: sum(1 for v in pairs.values() if v == value) for value in set(pairs.values())}
    assert len(groups) == sum(math.ceil(count / 1000) for count in distinct.values())


def test_rollback_touches_only_inverters_still_at_the_campaign_value() -> None:
    assert outcomes.rollback_check(Answer(value="10"), left="10", kind=ValueKind.NUMBER).state \
        is TargetState.ROLLBACK_READY
    assert outcomes.rollback_check(Answer(value="55"), left="10", kind=ValueKind.NUMBER).state \
        is TargetState.CHANGED_SINCE


@given(value=st.one_of(st.booleans(), st.integers(-5000, 5000), st.sampled_from(["07:30", "7:30:00", "20", " 20 "])))
def test_reported_forms_compare_equal_to_what_was_written(value: object) -> None:
    text = canonical(value)
    assert text is not None
    kind = ValueKind.BOOLEAN if isinstance(value, bool) else ValueKind.TIME if ":" in str(value) else ValueKind.NUMBER
    assert same(canonical(wire(text, kind)), text, kind)


def test_rules() -> None:
    assert check(10, ["between:4,100"]).value == "10"
    assert check(3, ["between:4,100"]).problem == "must be between 4 and 100"
    assert check("25:00", ["date_format:H:i"]).problem is not None
    assert check(True, ["boolean"]).value == "true"
    assert check(100, ["writeonly", "in:100"]).value == "100"
    assert check(5, ["in:0,1,2,3"]).problem is not None


def test_window_in_the_tenants_timezone_spanning_midnight() -> None:
    # 23:30 on a Monday in London (winter: UTC) is inside a Mon 22:00-02:00 window, and so is 01:00 on Tuesday.
    monday_late = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)
    assert in_window(monday_late, "Europe/London", time(22), time(2), [0])
    assert in_window(datetime(2026, 1, 6, 1, 0, tzinfo=UTC), "Europe/London", time(22), time(2), [0])
    assert not in_window(datetime(2026, 1, 6, 23, 30, tzinfo=UTC), "Europe/London", time(22), time(2), [0])
    noon = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    assert next_opening(noon, "Europe/London", time(22), time(2), [0]) == datetime(2026, 1, 5, 22, 0, tzinfo=UTC)
    assert next_opening(noon, "Europe/Berlin", time(22), time(2), None) == datetime(2026, 1, 5, 21, 0, tzinfo=UTC)
