"""Outcomes of control calls (settings, presets, multi-control, EV charger commands) as values.

A failed write is HTTP 200 with the failure in the body; the remote-control code decides what a caller may
do next. ``ControlResult.outcome`` folds the code into one of four answers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class RemoteControlCode(enum.IntEnum):
    """Remote-control codes of inverter control calls (v1 docs plus -7 seen in the wild)."""

    TIMEOUT = -1
    """The device did not answer in time; the write may still have applied."""
    OFFLINE = -2
    NO_SUCH_DEVICE = -3
    """The device does not exist or the account has no access to it."""
    VALIDATION = -4
    SERVER_ERROR = -5
    """May have applied."""
    NO_SERVER_RESPONSE = -6
    """May have applied."""
    LOCKED = -7
    """Another actor (a supplier's smart tariff, a VPP) owns the device; retrying never helps."""


class EvCommandCode(enum.IntEnum):
    """Codes of EV charger command responses."""

    SUCCESS = 0
    TIMEOUT = -1
    CHARGER_OFFLINE = -2
    INVALID_DATA = -3
    FAILURE = -4
    """The charger actioned the request but did not answer as expected."""
    ERROR = -5


class ControlOutcome(enum.StrEnum):
    """What a control call's result lets the caller conclude."""

    SUCCESS = "success"
    """Accepted by the device (for writes: check ``modified`` for clamping)."""
    FINAL = "final"
    """Failed and retrying will not help (validation, no access, locked by another actor)."""
    POTENTIALLY_APPLIED = "potentially_applied"
    """Unknown: the device may have applied it. Read back before retrying."""
    RETRY_LATER = "retry_later"
    """Not applied (device offline); retrying later is safe."""


_INVERTER_OUTCOMES: dict[int, ControlOutcome] = {
    RemoteControlCode.TIMEOUT: ControlOutcome.POTENTIALLY_APPLIED,
    RemoteControlCode.OFFLINE: ControlOutcome.RETRY_LATER,
    RemoteControlCode.NO_SUCH_DEVICE: ControlOutcome.FINAL,
    RemoteControlCode.VALIDATION: ControlOutcome.FINAL,
    RemoteControlCode.SERVER_ERROR: ControlOutcome.POTENTIALLY_APPLIED,
    RemoteControlCode.NO_SERVER_RESPONSE: ControlOutcome.POTENTIALLY_APPLIED,
    RemoteControlCode.LOCKED: ControlOutcome.FINAL,
}

_EV_OUTCOMES: dict[int, ControlOutcome] = {
    EvCommandCode.SUCCESS: ControlOutcome.SUCCESS,
    EvCommandCode.TIMEOUT: ControlOutcome.POTENTIALLY_APPLIED,
    EvCommandCode.CHARGER_OFFLINE: ControlOutcome.RETRY_LATER,
    EvCommandCode.INVALID_DATA: ControlOutcome.FINAL,
    EvCommandCode.FAILURE: ControlOutcome.POTENTIALLY_APPLIED,
    EvCommandCode.ERROR: ControlOutcome.POTENTIALLY_APPLIED,
}


def classify_inverter_code(code: int) -> ControlOutcome:
    """Outcome of an inverter remote-control code; unknown codes are treated as potentially applied."""
    return _INVERTER_OUTCOMES.get(code, ControlOutcome.POTENTIALLY_APPLIED)


def _same_value(a: Any, b: Any) -> bool:
    """Compare values the way the device reports them: ``"20" == 20``, ``True == 1``, ``"07:30:00" == "07:30"``."""
    if a is None or b is None:
        return a is b
    return bool(_normalise(a) == _normalise(b))


def _normalise(value: Any) -> Any:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        lowered = text.lower()
        if lowered in {"true", "false"}:
            return 1.0 if lowered == "true" else 0.0
        try:
            return float(text)
        except ValueError:
            pass
        parts = text.split(":")
        if len(parts) in (2, 3) and all(p.isdigit() for p in parts):
            hours, minutes = int(parts[0]), int(parts[1])
            seconds = int(parts[2]) if len(parts) == 3 else 0
            return f"{hours:02d}:{minutes:02d}:{seconds:02d}"
        return text
    return value


@dataclass(frozen=True, slots=True)
class ControlResult:
    """The outcome of one control call on one device.

    Attributes:
        success: The ``success`` flag (derived from the code when the service sent none).
        code: The remote-control (or EV command) code when the call failed, else ``None``.
        message: The service's message, if any.
        value: The value the device reports (for writes: what it stored, which may differ from ``requested``).
        requested: The value that was written, for writes.
        outcome: What the caller may conclude; see `ControlOutcome`.
        raw: The ``data`` object as received.
    """

    success: bool
    outcome: ControlOutcome
    code: int | None = None
    message: str | None = None
    value: Any = None
    requested: Any = None
    raw: Any = field(default=None, repr=False, compare=False)
    ev_charger: bool = False

    @property
    def code_name(self) -> str | None:
        """The code's name (``"LOCKED"``), ``"UNKNOWN"`` for codes outside the documented set."""
        if self.code is None:
            return None
        codes: type[enum.IntEnum] = EvCommandCode if self.ev_charger else RemoteControlCode
        try:
            return codes(self.code).name
        except ValueError:
            return "UNKNOWN"

    @property
    def modified(self) -> bool:
        """For a successful write: the device stored a different value than requested (e.g. clamped)."""
        if not self.success or self.requested is None or self.value is None:
            return False
        return not _same_value(self.value, self.requested)


def _code_of(value: Any) -> int | None:
    """The value as a negative integer code, or ``None`` when it cannot be one."""
    if isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer() and value < 0:
        return int(value)
    return None


def inverter_result(data: Any, *, requested: Any = None, is_write: bool) -> ControlResult:
    """Interpret the ``data`` of a single-device settings read/write or preset call."""
    if not isinstance(data, dict):
        return ControlResult(
            success=False, outcome=ControlOutcome.POTENTIALLY_APPLIED, message="unexpected body", raw=data
        )
    value = data.get("value")
    message = data.get("message")
    message = str(message) if message is not None else None
    success_flag = data.get("success")
    explicit_code = _code_of(data.get("code"))
    if success_flag is True:
        return ControlResult(
            success=True,
            outcome=ControlOutcome.SUCCESS,
            message=message,
            value=value,
            requested=requested,
            raw=data,
        )
    code = explicit_code
    value_code = _code_of(value)
    if code is None and value_code is not None and (success_flag is False or value_code in _INVERTER_OUTCOMES):
        # Without ``success`` (reads), only the documented codes can be told apart from a negative reading.
        code = value_code
    if code is None:
        if success_flag is False:
            return ControlResult(
                success=False,
                outcome=ControlOutcome.FINAL if not is_write else ControlOutcome.POTENTIALLY_APPLIED,
                message=message,
                value=value,
                requested=requested,
                raw=data,
            )
        return ControlResult(
            success=True, outcome=ControlOutcome.SUCCESS, message=message, value=value, requested=requested, raw=data
        )
    return ControlResult(
        success=False,
        outcome=classify_inverter_code(code),
        code=code,
        message=message,
        value=None,
        requested=requested,
        raw=data,
    )


def multi_result(entry: Any, *, requested: Any = None) -> ControlResult:
    """Interpret one inverter's ``{"response": value}`` of a multi-control read or write.

    Only a value is returned per device, so a negative integer is a code when it is a documented one, or
    (for writes) when it differs from the value written.
    """
    value = entry.get("response") if isinstance(entry, dict) else entry
    code = _code_of(value)
    echoed = requested is not None and _same_value(value, requested)
    if code is not None and not echoed and (code in _INVERTER_OUTCOMES or requested is not None):
        return ControlResult(
            success=False, outcome=classify_inverter_code(code), code=code, requested=requested, raw=entry
        )
    return ControlResult(success=True, outcome=ControlOutcome.SUCCESS, value=value, requested=requested, raw=entry)


def ev_command_result(data: Any) -> ControlResult:
    """Interpret the ``data`` of an EV charger send-command response."""
    if not isinstance(data, dict):
        return ControlResult(
            success=False,
            outcome=ControlOutcome.POTENTIALLY_APPLIED,
            message="unexpected body",
            raw=data,
            ev_charger=True,
        )
    raw_code = data.get("code")
    code = int(raw_code) if isinstance(raw_code, int | float) and not isinstance(raw_code, bool) else None
    message = data.get("message")
    success = data.get("success")
    if success is None:
        success = code == 0
    if success:
        outcome = ControlOutcome.SUCCESS
    elif code is None:
        outcome = ControlOutcome.POTENTIALLY_APPLIED
    else:
        outcome = _EV_OUTCOMES.get(code, ControlOutcome.POTENTIALLY_APPLIED)
    return ControlResult(
        success=bool(success),
        outcome=outcome,
        code=code if not success else None,
        message=str(message) if message is not None else None,
        value=data.get("error"),
        raw=data,
        ev_charger=True,
    )
