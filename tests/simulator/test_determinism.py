"""Same seed, same world: fleet, tokens, answers and events."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from service.simulator import Simulator, SimulatorConfig
from tests.simulator.conftest import client_factory

BUSY = dataclasses.replace(
    SimulatorConfig.quiet(fleet_size=60, seed=11),
    history_days=2.0,
    fault_rate_per_day=0.5,
    lost_rate_per_day=0.3,
    firmware_update_rate_per_day=0.2,
    setting_drift_rate_per_day=0.5,
    locked_fraction=0.1,
    another_actor_fraction=0.1,
    dead_fraction=0.05,
)


async def everything(sim: Simulator) -> list[Any]:
    """Every device and account as the API shows them to the distributor."""
    async with client_factory(sim)("distributor") as api:
        devices = (await api.get("/communication-device", params={"pageSize": 1000})).json()["data"]
        accounts = (await api.get("/account-children", params={"pageSize": 1000})).json()["data"]
        sites = (await api.get("/site", params={"pageSize": 1000})).json()["data"]
    return [devices, accounts, sites]


def timeline(sim: Simulator) -> list[Any]:
    events = [(e.serial, e.event, e.start_time, e.end_time) for e in sim.truth.events()]
    drifts = [dataclasses.astuple(d) for d in sim.truth.drifts()]
    states = [(d.serial, d.status, d.arm, d.dsp) for d in sim.truth.devices()]
    return [events, drifts, states]


async def test_same_seed_same_fleet_and_tokens() -> None:
    first, second = Simulator(BUSY), Simulator(BUSY)
    assert first.tokens == second.tokens
    assert await everything(first) == await everything(second)
    assert first.truth.summary() == second.truth.summary()


async def test_different_seed_different_fleet() -> None:
    first = Simulator(BUSY)
    other = Simulator(dataclasses.replace(BUSY, seed=12))
    assert first.tokens != other.tokens
    assert await everything(first) != await everything(other)


async def test_same_seed_same_events_however_the_clock_is_moved() -> None:
    in_one_go, in_steps = Simulator(BUSY), Simulator(BUSY)
    assert timeline(in_one_go) == timeline(in_steps)  # history played at construction
    in_one_go.clock.advance(timedelta(days=2))
    for _ in range(48):
        in_steps.clock.advance(timedelta(hours=1))
    assert in_one_go.clock.now() == in_steps.clock.now()
    events, drifts, _ = timeline(in_one_go)
    assert len(events) > 10
    assert drifts
    assert timeline(in_one_go) == timeline(in_steps)


async def test_same_seed_same_control_outcomes() -> None:
    config = dataclasses.replace(BUSY, control_error_probabilities={-1: 0.2, -5: 0.1, -6: 0.1})
    answers = []
    for sim in (Simulator(config), Simulator(config)):
        serials = sim.truth.visible_serials("company")
        async with client_factory(sim)("company") as api:
            response = await api.post(
                "/multi-control/write", json={"inverter_serials": serials, "setting_id": 47, "value": 90}
            )
        answers.append(response.json())
    assert answers[0] == answers[1]
    codes = {entry["response"] for entry in answers[0].values()}
    assert codes & {-1, -5, -6}


def test_same_seed_same_world_across_processes() -> None:
    """String hashing differs per process; nothing the simulator generates may depend on it."""
    script = (
        "import hashlib, json, datetime\n"
        "from service.simulator import Simulator, SimulatorConfig\n"
        "from tests.simulator.test_determinism import BUSY\n"
        "sim = Simulator(BUSY)\n"
        "sim.clock.advance(datetime.timedelta(hours=12))\n"
        "world = [sim.tokens, [sim.truth.communication_device_json(d.serial) for d in sim.truth.devices()],\n"
        "         [(e.serial, e.event, str(e.start_time), str(e.end_time)) for e in sim.truth.events()],\n"
        "         [(a.id, a.username, a.parent_id, a.role) for a in sim.truth.accounts()]]\n"
        "print(hashlib.sha256(json.dumps(world, sort_keys=True).encode()).hexdigest())\n"
    )
    digests = {
        subprocess.run(  # noqa: S603 - our own interpreter
            [sys.executable, "-c", script], check=True, capture_output=True, text=True,
            env={"PYTHONHASHSEED": str(hash_seed), "PATH": ""}, cwd=str(Path(__file__).parents[2]),
        ).stdout.strip()
        for hash_seed in (1, 2)
    }  # fmt: skip
    assert len(digests) == 1
