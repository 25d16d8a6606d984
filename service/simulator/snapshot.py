"""Snapshots of a simulated world as JSON, so that it outlives the process serving it.

A :class:`Snapshot` holds what the world has become: the fleet's records (settings written, firmware, statuses,
injected states, dongles added or moved), behaviour's events, LOST and UPDATING sets and the happenings it has yet
to run, the state of every random generator, the tokens minted, the control log, counters and notifications, and a
simulated time the clock had not passed. ``sim.snapshot()`` takes one; ``Simulator(config, resume=snapshot)``
carries on from it instead of generating the world afresh (its clock starts no earlier than the snapshot's time).
The configuration is not in it: the resuming simulator is given it again, and :func:`from_json` refuses a snapshot
of another seed, fleet size or format (:class:`ForeignSnapshotError`). Legacy portal sessions are not kept.

The JSON is derived from the records' type annotations (every record is a dataclass): :func:`to_json` and
:func:`from_json` know how to write a type, never a list of fields. No pickle: reading a snapshot runs nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from service.simulator.behaviour import BehaviourState
from service.simulator.catalogue import MODEL_BY_NAME, Model
from service.simulator.config import SimulatorConfig
from service.simulator.fleet import TRANSIENT, FleetRecords
from service.simulator.records import ControlCall, Counters, RandomState, Token

FORMAT = 2
"""Version of the snapshot format: raise it whenever a record kept in one changes shape (a test pins their shape
against it: tests/simulator/test_snapshot.py)."""


@dataclass(slots=True)
class Snapshot:
    """A simulated world as it was at a moment (see the module docstring).

    Attributes:
        format: :data:`FORMAT` when it was written.
        seed: Seed of the world (the configuration's).
        fleet_size: Inverters generated at first (the configuration's; dongles added later are in ``fleet``).
        reached: A simulated time the clock had not passed: the resumed clock starts no earlier.
        fleet: Accounts, sites, devices, EV chargers and smart devices.
        behaviour: Events, LOST/UPDATING sets, scheduled happenings and their generator.
        tokens: Every token, minted ones included.
        control_log: The control calls received (since the last :meth:`~service.simulator.Simulator.forget`).
        control_calls_forgotten: Control calls received before those (dropped by ``forget``).
        counters: Requests per token name.
        notifications: Notifications accepted.
        control_random_state: Generator of the configured control failures.
        error_random_state: Generator of the configured server errors.
    """

    format: int
    seed: int
    fleet_size: int
    reached: datetime
    fleet: FleetRecords
    behaviour: BehaviourState
    tokens: list[Token]
    control_log: list[ControlCall]
    control_calls_forgotten: int
    counters: dict[str, Counters]
    notifications: list[dict[str, Any]]
    control_random_state: RandomState
    error_random_state: RandomState


class ForeignSnapshotError(Exception):
    """A readable snapshot of another world (another seed, fleet size or format): not one to carry on from.

    Attributes:
        reached: Its ``reached`` time, when it has a readable one: a world that replaces it should start no earlier,
            so that times its users saw do not go backwards.
    """

    def __init__(self, message: str, reached: datetime | None) -> None:
        super().__init__(message)
        self.reached = reached


def document(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot as JSON-ready data (plain dicts, lists and scalars): unlike the snapshot, it shares nothing with
    the live world, so it can be turned into text (:func:`dumps`) while the world moves on."""
    encoded: dict[str, Any] = _encode(snapshot)
    return encoded


def dumps(data: dict[str, Any]) -> str:
    """A :func:`document` as compact JSON text."""
    return json.dumps(data, separators=(",", ":"))


def to_json(snapshot: Snapshot) -> str:
    """The snapshot as compact JSON text."""
    return dumps(document(snapshot))


def from_json(text: str, config: SimulatorConfig) -> Snapshot:
    """Read a snapshot written by :func:`to_json` for a simulator of this configuration.

    Raises:
        ForeignSnapshotError: It was written for another seed or fleet size, or in another format.
        ValueError: It is not a snapshot (not JSON, or not of the expected shape); the message says what is wrong.
    """
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    written = {key: document.get(key) for key in ("format", "seed", "fleet_size")}
    wanted = {"format": FORMAT, "seed": config.seed, "fleet_size": config.fleet_size}
    if written != wanted:
        differences = ", ".join(f"{key} {written[key]} (not {wanted[key]})" for key in wanted
                                if written[key] != wanted[key])
        raise ForeignSnapshotError(f"written for another world: {differences}", _reached(document.get("reached")))
    try:
        decoded: Snapshot = _decode(Snapshot, document)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"not of the expected shape ({type(exc).__name__}: {exc})") from None
    return decoded


def _reached(data: Any) -> datetime | None:
    try:
        reached: datetime = _decode(datetime, data)
    except (TypeError, ValueError):
        return None
    return reached


def _encode(value: Any) -> Any:
    """``value`` as JSON-ready data (dict keys become strings; :func:`_decode` turns them back by type)."""
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Model):
        return value.name
    if dataclasses.is_dataclass(value):
        record: type = type(value)
        return {f.name: _encode(getattr(value, f.name)) for f in _kept_fields(record)}
    if isinstance(value, dict):
        return {str(key): _encode(item) for key, item in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(_encode(item) for item in value)
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    raise TypeError(f"no JSON form for a {type(value).__name__}")


def _decode(hint: Any, data: Any) -> Any:  # noqa: C901 - one case per kind of type, read straight down
    """The value of type ``hint`` that :func:`_encode` wrote as ``data``."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [option for option in arguments if option is not type(None)]
        if data is None:
            return None
        return _decode(options[0], data) if len(options) == 1 else _scalar(data)  # e.g. bool | int | str
    if hint is Any:
        return data
    if origin in (list, set, frozenset):
        return origin(_decode(arguments[0], item) for item in _sequence(data))
    if origin is tuple:
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return tuple(_decode(arguments[0], item) for item in _sequence(data))
        return tuple(_decode(argument, item) for argument, item in zip(arguments, _sequence(data), strict=True))
    if origin is dict:
        if not isinstance(data, dict):
            raise TypeError(f"expected an object, got {data!r:.40}")
        key_type = arguments[0]
        return {key_type(key): _decode(arguments[1], item) for key, item in data.items()}
    if hint is datetime:
        moment = datetime.fromisoformat(data)
        if moment.tzinfo is None:
            raise TypeError(f"expected a time with a timezone, got {data!r:.40}")
        return moment
    if hint is Model:
        return MODEL_BY_NAME[data]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = _hints(hint)
        return hint(**{f.name: _decode(hints[f.name], data[f.name]) for f in _kept_fields(hint)})
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(data)
    if hint is float and isinstance(data, int | float) and not isinstance(data, bool):
        return float(data)
    if hint in (bool, int, str) and type(data) is hint:
        return data
    raise TypeError(f"expected {getattr(hint, '__name__', hint)}, got {data!r:.40}")


def _scalar(data: Any) -> Any:
    if isinstance(data, bool | int | float | str):
        return data
    raise TypeError(f"expected a number, a string or a boolean, got {data!r:.40}")


def _sequence(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise TypeError(f"expected a list, got {data!r:.40}")
    return data


@functools.cache
def _kept_fields(record: type) -> tuple[dataclasses.Field[Any], ...]:
    """The fields of a record a snapshot keeps (all but caches: :data:`~service.simulator.fleet.TRANSIENT`)."""
    return tuple(f for f in dataclasses.fields(record) if not f.metadata.get(TRANSIENT))


@functools.cache
def _hints(record: type) -> dict[str, Any]:
    return typing.get_type_hints(record)
