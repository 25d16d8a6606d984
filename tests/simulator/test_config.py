"""SimulatorConfig.quiet(): the calm world tests start from."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from service.simulator import Simulator, SimulatorConfig

KEPT_IN_A_QUIET_WORLD = {
    "rate_limit_window_seconds",
    "notification_window_seconds",
    "ev_charger_fraction",
    "smart_device_fraction",
}
"""Float fields that are no disturbance: lengths of rate-limit windows, shares of customers owning other devices."""


def test_every_rate_probability_and_awkward_share_is_zero_in_a_quiet_world() -> None:
    quiet = SimulatorConfig.quiet()
    disturbances = [
        f.name
        for f in dataclasses.fields(SimulatorConfig)
        if isinstance(f.default, float) and f.name not in KEPT_IN_A_QUIET_WORLD
    ]
    assert {"fault_rate_per_day", "locked_fraction"} <= set(disturbances)
    assert {name: getattr(quiet, name) for name in disturbances} == dict.fromkeys(disturbances, 0.0)


def test_a_quiet_world_keeps_its_ev_chargers_and_takes_overrides() -> None:
    quiet = SimulatorConfig.quiet(locked_fraction=0.5, fleet_size=3)
    assert (quiet.locked_fraction, quiet.fleet_size) == (0.5, 3)
    defaults = SimulatorConfig()
    assert (quiet.ev_charger_fraction, quiet.smart_device_fraction) == (
        defaults.ev_charger_fraction,
        defaults.smart_device_fraction,
    )


def test_nothing_happens_in_a_quiet_world_over_a_week() -> None:
    sim = Simulator(SimulatorConfig.quiet(fleet_size=300))
    sim.clock.advance(timedelta(days=7))
    devices = sim.truth.devices()
    assert sim.truth.events() == []
    assert sim.truth.drifts() == []
    assert [d.serial for d in devices if d.locked or d.another_actor or not d.controllable] == []
    assert {d.status for d in devices} <= {"NORMAL", "WAITING"}
    assert len(sim.truth.ev_chargers()) > 1  # the main customer's, and the share of the others
