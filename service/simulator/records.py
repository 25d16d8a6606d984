"""Plain records shared by the simulator's modules: tokens, control calls, counters, remote-control codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

RandomState = tuple[int, tuple[int, ...], float | None]
"""What :meth:`random.Random.getstate` returns (and ``setstate`` takes): a generator kept across restarts."""

ALL_SCOPES: frozenset[str] = frozenset(
    {
        "api:account:read",
        "api:account:list",
        "api:inverter:list",
        "api:inverter:read",
        "api:inverter:data",
        "api:inverter:control",
        "api:ev-charger:list",
        "api:ev-charger:read",
        "api:ev-charger:data",
        "api:ev-charger:control",
        "api:site:list",
        "api:site:read",
        "api:site:update",
        "api:smart-device:list",
        "api:smart-device:create",
        "api:smart-device:read",
        "api:smart-device:data",
        "api:notification:send",
    }
)
READ_ONLY_SCOPES: frozenset[str] = frozenset(scope for scope in ALL_SCOPES if not scope.endswith(":control"))

CONTROL_MESSAGES: dict[int, str] = {
    -1: "Request Timed Out",
    -2: "Device Offline",
    -3: "Device Not Found",
    -4: "Validation Failed",
    -5: "Server Error",
    -6: "No Response From Server",
    -7: "Inverter Locked",
}
MAYBE_APPLIED_CODES = frozenset({-1, -5, -6})


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token of the simulated service.

    Attributes:
        value: The bearer string.
        name: Key in :attr:`Simulator.tokens` (or a caller-chosen name).
        account_id: Account the token acts as.
        scopes: Granted scopes (a parent such as ``api:inverter`` grants its children).
        approved: Whether the account is approved (``approved users only`` endpoints).
        subscribed: Whether the account has an API subscription (otherwise every call answers
            ``no_subscription_status``).
        rate_limit: A custom global limit per window for this token (commercial tiers); ``None`` = default.
    """

    value: str
    name: str
    account_id: int
    scopes: frozenset[str]
    approved: bool = True
    subscribed: bool = True
    rate_limit: int | None = None

    def has_scope(self, scope: str) -> bool:
        """Whether the token grants ``scope`` (directly or through a parent scope)."""
        return any(scope == granted or scope.startswith(granted + ":") for granted in self.scopes)


@dataclass(frozen=True, slots=True)
class ControlCall:
    """One device call received by the simulator (per serial for multi-control).

    Attributes:
        time: Simulation time of the call.
        token: Name of the token used.
        account_id: Account of the token.
        action: ``read``, ``write``, ``multi-read``, ``multi-write`` or ``preset``.
        serial: Inverter serial.
        setting_id: Setting id (``None`` for presets).
        value: Value requested (writes) or ``None``.
        outcome: Remote-control code (-1..-7) or ``None`` when the device answered.
        response: What the API answered for this serial (value or code).
        applied: Whether the true value changed.
        stored: The true value after the call.
        context: The ``context`` sent with the call.
        preset_id: Preset id for preset calls.
    """

    time: datetime
    token: str
    account_id: int
    action: str
    serial: str
    setting_id: int | None
    value: Any
    outcome: int | None
    response: Any
    applied: bool
    stored: Any
    context: str | None = None
    preset_id: int | None = None


@dataclass(slots=True)
class Counters:
    """Requests seen for one token."""

    requests: int = 0
    throttled: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeviceAnswer:
    """The device's answer to one control call."""

    code: int | None
    value: Any
    applied: bool
