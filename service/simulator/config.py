"""Configuration of the simulator: one frozen dataclass, every field with a default."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime

_DISTURBANCE_SUFFIXES = ("_fraction", "_per_day", "_probability")
"""Name endings of the fields that :meth:`SimulatorConfig.quiet` sets to zero."""

_FLEET_MAKEUP_FRACTIONS = frozenset({"ev_charger_fraction", "smart_device_fraction"})
"""Shares of customers owning other devices: what the fleet is made of, not how it misbehaves."""


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Everything that shapes a simulated GivEnergy Cloud.

    The defaults reproduce the real service as documented (300 requests/minute per token, page size 15,
    real-time clock) with a realistic share of awkward inverters (locked, owned by another actor, dead).
    Tests that need a calm, frozen world start from :meth:`quiet`.

    Attributes:
        fleet_size: Number of inverters (one per communication device) to generate.
        seed: Seed of the fleet and of everything random; same seed and same clock moves give the same world.
        start_time: Simulation time at construction (aware UTC); ``None`` means the wall-clock time.
        clock_speed: Simulated seconds per real second; ``0`` freezes the clock (only ``advance`` moves it).
        history_days: Days of behaviour (faults, outages, updates) played before ``start_time`` at construction.
        rate_limits_enabled: Enforce the per-token limits below.
        rate_limit_per_window: Global requests per token per window (custom-limited endpoints excluded).
        rate_limit_window_seconds: Length of the global window, in real (monotonic) seconds.
        notification_limit: Requests allowed per window on ``POST /notification/send``.
        notification_window_seconds: Length of the notification window, in real seconds.
        default_page_size: Page size when ``pageSize`` is absent (15, as documented).
        max_page_size: Silent cap on ``pageSize`` (``meta.per_page`` shows the size used); ``None`` = no cap.
        latency_seconds: Real seconds every device call (settings read/write, multi-control, presets,
            request-data, EV commands) waits before answering.
        control_error_probabilities: Probability per remote-control code (-1..-7) that a device call fails
            with that code regardless of the inverter's state.
        server_error_probability: Probability that any cloud request answers 500/502/503.
        gateway_timeout_probability: Probability that any cloud request answers 504.
        no_subscription_status: Status answered to tokens of accounts without a subscription (401, 402, 403).
        locked_fraction: Share of inverters locked by another actor (writes fail with -7).
        another_actor_fraction: Share of inverters whose writes are accepted and then not applied.
        not_controllable_fraction: Share of inverters without the ``is-controllable`` flag (they ignore writes).
        dead_fraction: Share of inverters LOST for weeks (``last_updated`` days old).
        new_status_fraction: Share of inverters reporting statuses newer than the v1.26 docs (OFF_GRID, ON_GRID).
        fault_rate_per_day: Faults started per inverter per simulated day.
        lost_rate_per_day: Connection losses (status LOST) per inverter per simulated day.
        firmware_update_rate_per_day: Firmware updates per inverter per simulated day.
        setting_drift_rate_per_day: Setting changes by "another actor" per inverter per simulated day.
        actor_drift_rate_per_day: Setting changes per simulated day on each inverter held by another actor (a
            supplier's smart tariff or a VPP rewrites them every few hours).
        ev_charger_fraction: Share of customers owning an EV charger.
        smart_device_fraction: Share of customers owning smart devices.
    """

    fleet_size: int = 200
    seed: int = 7
    start_time: datetime | None = None
    clock_speed: float = 1.0
    history_days: float = 7.0
    rate_limits_enabled: bool = True
    rate_limit_per_window: int = 300
    rate_limit_window_seconds: float = 60.0
    notification_limit: int = 10
    notification_window_seconds: float = 3600.0
    default_page_size: int = 15
    max_page_size: int | None = None
    latency_seconds: float = 0.0
    control_error_probabilities: dict[int, float] = field(default_factory=dict)
    server_error_probability: float = 0.0
    gateway_timeout_probability: float = 0.0
    no_subscription_status: int = 403
    locked_fraction: float = 0.01
    another_actor_fraction: float = 0.03
    not_controllable_fraction: float = 0.03
    dead_fraction: float = 0.01
    new_status_fraction: float = 0.01
    fault_rate_per_day: float = 0.05
    lost_rate_per_day: float = 0.03
    firmware_update_rate_per_day: float = 0.005
    setting_drift_rate_per_day: float = 0.05
    actor_drift_rate_per_day: float = 4.0
    ev_charger_fraction: float = 0.1
    smart_device_fraction: float = 0.05

    def __post_init__(self) -> None:
        if self.fleet_size < 1:
            raise ValueError("fleet_size must be at least 1")
        if self.no_subscription_status not in (401, 402, 403):
            raise ValueError("no_subscription_status must be 401, 402 or 403")
        for code in self.control_error_probabilities:
            if code not in range(-7, 0):
                raise ValueError(f"unknown remote-control code {code}")
        if self.start_time is not None and self.start_time.tzinfo is None:
            raise ValueError("start_time must be timezone-aware")

    @classmethod
    def quiet(cls, **overrides: object) -> SimulatorConfig:
        """A calm world for tests: frozen clock at a fixed time, no history, no spontaneous behaviour.

        Every rate (``*_per_day``), probability (``*_probability``) and share of awkward inverters
        (``*_fraction``) is zero, a field added later included; only the shares of customers owning EV
        chargers and smart devices keep their defaults, as they shape the fleet rather than disturb it. Tests
        opt in to what they exercise via ``overrides`` or the simulator's mutators.

        Args:
            **overrides: Any field of :class:`SimulatorConfig`.

        Returns:
            The configuration.
        """
        calm: dict[str, object] = {
            "fleet_size": 20,
            "seed": 1,
            "start_time": datetime.fromisoformat("2026-06-01T12:00:00+00:00"),
            "clock_speed": 0.0,
            "history_days": 0.0,
        }
        for f in dataclasses.fields(cls):
            if f.name.endswith(_DISTURBANCE_SUFFIXES) and f.name not in _FLEET_MAKEUP_FRACTIONS:
                calm[f.name] = 0.0
        return cls(**(calm | overrides))  # type: ignore[arg-type]
