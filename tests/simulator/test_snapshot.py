"""Snapshots: a world written as JSON and read back carries on exactly as the one it was taken of."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest

from service.simulator import Simulator, SimulatorConfig, snapshot
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
