"""Setting values: one text form for storing and comparing, the wire form for writing, and the catalogue rules.

Devices report values in mixed types (``True``, ``20``, ``"20"``, ``"07:30:00"``); a campaign stores every value
as canonical text (``true``, ``20``, ``07:30``) so that "already set", "applied" and "changed since" are plain
comparisons.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


class ValueKind(enum.StrEnum):
    """How a setting's value is written, from its validation rules."""

    BOOLEAN = "boolean"
    TIME = "time"
    NUMBER = "number"


def kind_of(rules: Sequence[str]) -> ValueKind:
    """The kind of value a setting with these ``validation_rules`` takes."""
    names = {rule.partition(":")[0] for rule in rules}
    if "boolean" in names:
        return ValueKind.BOOLEAN
    if "date_format" in names:
        return ValueKind.TIME
    return ValueKind.NUMBER


def canonical(value: object) -> str | None:
    """The canonical text of a value as written or reported (``None`` for nothing or an unreadable value)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    if not isinstance(value, str):
        return None
    text = value.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered
    try:
        return canonical(float(text))
    except ValueError:
        pass
    match = _TIME.match(text)
    if match:
        hours, minutes, seconds = match.group(1), match.group(2), match.group(3)
        clock = f"{int(hours):02d}:{minutes}"
        return clock if seconds in (None, "00") else f"{clock}:{seconds}"
    return text


def same(a: str | None, b: str | None, kind: ValueKind = ValueKind.NUMBER) -> bool:
    """Whether two canonical values are the same setting value (``1`` is ``true`` for booleans)."""
    if a is None or b is None:
        return False
    if kind is ValueKind.BOOLEAN:
        return _truth(a) is not None and _truth(a) == _truth(b)
    return a == b


def _truth(text: str) -> bool | None:
    return {"true": True, "1": True, "false": False, "0": False}.get(text)


def wire(text: str, kind: ValueKind) -> bool | int | float | str:
    """The JSON value to write for canonical ``text``."""
    if kind is ValueKind.BOOLEAN:
        return bool(_truth(text))
    if kind is ValueKind.TIME:
        return text[:5]
    number = float(text)
    return int(number) if number.is_integer() else number


@dataclass(frozen=True)
class RuleCheck:
    """A value checked against a setting's rules: its canonical text, or why it is refused."""

    value: str | None
    problem: str | None = None


def check(value: object, rules: Sequence[str]) -> RuleCheck:
    """Check a value against ``validation_rules`` as the cloud lists them (boolean, date_format, between, in,
    min, max, numeric; unknown rules are not checked here: the device has the last word)."""
    text = canonical(value)
    if text is None:
        return RuleCheck(None, "a value is required")
    kind = kind_of(rules)
    if kind is ValueKind.BOOLEAN:
        truth = _truth(text)
        if truth is None:
            return RuleCheck(None, "must be true or false")
        return RuleCheck("true" if truth else "false")
    if kind is ValueKind.TIME:
        match = _TIME.match(text)
        if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
            return RuleCheck(None, "must be a time of day, HH:MM")
        return RuleCheck(text[:5])
    try:
        number = float(text)
    except ValueError:
        return RuleCheck(None, "must be a number")
    for rule in rules:
        name, _, args = rule.partition(":")
        bounds = [float(part) for part in args.split(",") if _is_number(part)]
        if name == "between" and len(bounds) == 2 and not bounds[0] <= number <= bounds[1]:
            return RuleCheck(None, f"must be between {args.replace(',', ' and ')}")
        if name == "in" and bounds and number not in bounds:
            return RuleCheck(None, f"must be one of {args}")
        if name == "min" and bounds and number < bounds[0]:
            return RuleCheck(None, f"must be at least {args}")
        if name == "max" and bounds and number > bounds[0]:
            return RuleCheck(None, f"must be at most {args}")
    return RuleCheck(canonical(number))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def kind_of_value(text: str) -> ValueKind:
    """The kind of a canonical value (what :func:`check` returns tells them apart: ``true``, ``07:30``, ``20``)."""
    if text in ("true", "false"):
        return ValueKind.BOOLEAN
    if ":" in text:
        return ValueKind.TIME
    return ValueKind.NUMBER
