"""Snapshots: a world written as JSON and read back carries on exactly as the one it was taken of."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from datetime import timedelta
from typing import Any

import pytest

from service.simulator import Simulator, SimulatorConfig, snapshot
from service.simulator.catalogue import Model
from service.simulator.fleet import TRANSIENT
from tests.simulator.conftest import client_factory
from tests.simulator.test_control import hybrid, write

LIVELY = SimulatorConfig.quiet(fleet_size=40, history_days=2.0, fault_rate_per_day=2.0, lost_rate_per_day=0.5,
                               firmware_update_rate_per_day=0.5, setting_drift_rate_per_day=0.5,
                               another_actor_fraction=0.1, actor_drift_rate_per_day=4.0, dead_fraction=0.05)


async def test_a_resumed_world_carries_on_as_the_original() -> None:
    original = Simulator(LIVELY)
    serial = hybrid(original, where=lambda d: d.controllable and not d.another_actor and d.status == "NORMAL").serial
    await write(original, serial, 71, 10)
    [injected] = original.inject_fault([serial], "Isolation fault", timedelta(hours=5))
    original.create_token(original.truth.account_of_token("company").id, name="campaigns")
    resumed = Simulator(LIVELY, resume=snapshot.from_json(snapshot.to_json(original.snapshot()), LIVELY))
    assert resumed.truth.setting(serial, 71) == 10
    assert resumed.tokens["campaigns"] == original.tokens["campaigns"]
    assert resumed.truth.control_log() == original.truth.control_log()
    for world in (original, resumed):
        world.clock.advance(timedelta(days=2))
    assert snapshot.to_json(resumed.snapshot()) == snapshot.to_json(original.snapshot()), (
        "the same faults, outages, updates and drifts followed, and the injected fault cleared in both")
    [cleared] = [event for event in resumed.truth.events(serial) if event.start_time == injected.start_time]
    assert cleared.end_time == injected.start_time + timedelta(hours=5)


def test_a_snapshot_of_another_world_is_refused() -> None:
    text = snapshot.to_json(Simulator(LIVELY).snapshot())
    with pytest.raises(snapshot.ForeignSnapshotError, match=r"seed 1 \(not 2\), fleet_size 40 \(not 41\)"):
        snapshot.from_json(text, dataclasses.replace(LIVELY, seed=2, fleet_size=41))
    document = json.loads(text)
    document["behaviour"]["drifts"] = {"x": []}
    with pytest.raises(ValueError, match=r"expected shape \(TypeError: expected a list, got \{'x': \[\]\}\)"):
        snapshot.from_json(json.dumps(document), LIVELY)


def test_a_time_without_a_timezone_is_refused() -> None:
    document = json.loads(snapshot.to_json(Simulator(LIVELY).snapshot()))
    document["reached"] = "2026-01-01T00:00:00"
    with pytest.raises(ValueError, match=r"TypeError: expected a time with a timezone, got '2026-01-01T00:00:00'"):
        snapshot.from_json(json.dumps(document), LIVELY)


async def test_forgetting_the_past_keeps_what_the_cloud_still_answers() -> None:
    sim = Simulator(LIVELY)
    serial = hybrid(sim, where=lambda d: d.controllable and not d.another_actor and d.status == "NORMAL").serial
    await write(sim, serial, 71, 10)
    [still_open] = sim.inject_fault([serial], "Isolation fault", timedelta(days=30))
    sim.clock.advance(timedelta(days=10))
    await write(sim, serial, 71, 20)
    before = sim.now() - timedelta(days=3)
    kept_events = [event for event in sim.truth.events() if event.end_time is None or event.end_time >= before]
    kept_drifts = [drift for drift in sim.truth.drifts() if drift.time >= before]
    calls, every_event = sim.truth.control_log(), sim.truth.events()
    sim.notifications.extend({"title": str(number)} for number in range(1005))
    size = len(snapshot.to_json(sim.snapshot()))

    sim.forget(before)
    assert sim.truth.events() == kept_events, "recent events stay"
    assert still_open in kept_events, "an open fault stays however old"
    assert len(kept_events) < len(every_event) / 2, "ten days of events, seven of them forgotten"
    assert sim.truth.drifts() == kept_drifts
    assert sim.truth.control_log() == calls[1:], "the write of ten days ago is forgotten, today's kept"
    assert [n["title"] for n in sim.truth.notifications()] == [str(number) for number in range(5, 1005)]
    assert len(snapshot.to_json(sim.snapshot())) < size * 0.6, "the snapshot shrank as much"
    async with client_factory(sim)(None, base="http://sim/_simulator") as door:
        log = (await door.get("/control-log", params={"since": len(calls) - 1})).json()
    assert log["total"] == len(calls), "the side door still counts every call: since=N goes on working"
    assert [entry["value"] for entry in log["data"]] == [20]
    resumed = Simulator(LIVELY, resume=snapshot.from_json(snapshot.to_json(sim.snapshot()), LIVELY))
    assert resumed.control_calls_forgotten == 1


def record_schema(hint: Any, seen: dict[str, list[str]]) -> dict[str, list[str]]:
    """Field names and types of every record (dataclass) a snapshot of ``hint`` reaches, by record name (a
    catalogue :class:`Model` is written by its name)."""
    record = isinstance(hint, type) and dataclasses.is_dataclass(hint) and hint is not Model
    if record and hint.__qualname__ not in seen:
        hints = typing.get_type_hints(hint)
        kept = [f.name for f in dataclasses.fields(hint) if not f.metadata.get(TRANSIENT)]
        seen[hint.__qualname__] = [f"{name}: {hints[name]}" for name in kept]
        for name in kept:
            record_schema(hints[name], seen)
    for argument in typing.get_args(hint):
        record_schema(argument, seen)
    return seen


def test_a_record_changed_bumps_the_format() -> None:
    schema = json.dumps(record_schema(snapshot.Snapshot, {}), sort_keys=True)
    fingerprint = hashlib.sha256(schema.encode()).hexdigest()[:16]
    assert (snapshot.FORMAT, fingerprint) == (2, "f5e6beb8ba677f07"), (
        "a record a snapshot keeps changed shape: raise snapshot.FORMAT (older snapshots then make a new fleet "
        f"rather than fail to read) and pin the new fingerprint here; the records now: {schema}")
