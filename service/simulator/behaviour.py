"""Behaviour over simulated time: faults that open and clear, LOST and back, firmware updates, setting drift.

Spontaneous happenings are Poisson processes over the whole fleet, drawn from their own seeded generator in
time order, so the same seed and the same clock moves produce the same events however the moves are chunked.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from service.simulator.catalogue import Setting, rule_bounds
from service.simulator.fleet import Device, Fleet
from service.simulator.records import RandomState

FAULTS: tuple[tuple[str, str], ...] = (
    ("PV Over Voltage", "ERROR"),
    ("Grid Over Frequency", "WARNING"),
    ("Grid Under Voltage", "WARNING"),
    ("Battery Over Temperature", "ERROR"),
    ("Parallel communication failure", "ERROR"),
    ("BMS communication fault", "ERROR"),
    ("Isolation fault", "ERROR"),
    ("Meter communication lost", "WARNING"),
)
_DRIFTING_SETTINGS = (71, 24, 72, 73, 64, 65, 77, 66)


@dataclass(slots=True)
class InverterEvent:
    """A fault reported by an inverter (GET /inverter/{serial}/events).

    Attributes:
        serial: Inverter serial.
        event: Fault description.
        severity: Status the fault puts the inverter in (ERROR or WARNING).
        start_time: When it started.
        end_time: When it cleared (``None`` while active).
    """

    serial: str
    event: str
    severity: str
    start_time: datetime
    end_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Drift:
    """A setting changed by another actor."""

    time: datetime
    serial: str
    setting_id: int
    old_value: bool | int | str
    new_value: bool | int | str


class Happening(StrEnum):
    """Scheduled happenings."""

    SPAWN_FAULT = "spawn_fault"
    SPAWN_LOST = "spawn_lost"
    SPAWN_FIRMWARE = "spawn_firmware"
    SPAWN_DRIFT = "spawn_drift"
    SPAWN_ACTOR = "spawn_actor"
    CLEAR_FAULT = "clear_fault"
    BACK_ONLINE = "back_online"
    FIRMWARE_DONE = "firmware_done"


@dataclass(frozen=True, slots=True)
class Rates:
    """Happenings per inverter per simulated day (``actor_drift``: per inverter held by another actor)."""

    fault: float
    lost: float
    firmware: float
    drift: float
    actor_drift: float = 0.0


@dataclass(slots=True)
class _Scheduled:
    time: datetime
    sequence: int
    kind: Happening
    device_index: int = -1
    event: InverterEvent | None = None


@dataclass(slots=True)
class BehaviourState:
    """What behaviour has left and has yet to run: all a :class:`Behaviour` needs to carry on (the faults still open
    are the events without an end), kept across restarts of ``givfleet up`` by :mod:`.snapshot`.

    Attributes:
        time: Time up to which happenings have been run.
        random_state: State of the behaviour generator (:meth:`random.Random.getstate`).
        sequence: Sequence number of the last happening scheduled (ties at one time run in this order).
        scheduled: Happenings yet to run.
        actor_population: Inverters held by another actor at the start (the actor process's rate).
        events: Fault events per inverter serial, oldest first.
        lost: Indexes of the inverters LOST for a while, with the time each went.
        updating: Indexes of the inverters updating their firmware.
        dead: Indexes of the inverters LOST for good.
        drifts: Setting changes made by another actor, oldest first.
    """

    time: datetime
    random_state: RandomState
    sequence: int
    scheduled: list[_Scheduled]
    actor_population: int
    events: dict[str, list[InverterEvent]]
    lost: dict[int, datetime]
    updating: set[int]
    dead: set[int]
    drifts: list[Drift]


class Behaviour:
    """Runs due happenings and keeps the state they leave (events, LOST/UPDATING sets, drift log)."""

    def __init__(self, fleet: Fleet, rates: Rates, state: BehaviourState) -> None:
        """Carry on from a state (:meth:`starting` makes a first one; :meth:`state` takes it to keep it).

        Args:
            fleet: The fleet to act on (the one the state was made on).
            rates: Happenings per inverter per day.
            state: What happened so far and what is scheduled.
        """
        self._fleet = fleet
        self._rng = random.Random()  # noqa: S311 - simulation, not cryptography
        self._rng.setstate(state.random_state)
        self._rates = rates
        self._time = state.time
        # (timestamp, sequence, item): plain tuples keep the heap cheap for long histories of large fleets.
        self._queue: list[tuple[float, int, _Scheduled]] = [
            (item.time.timestamp(), item.sequence, item) for item in state.scheduled
        ]
        heapq.heapify(self._queue)
        self._sequence = state.sequence
        self.events = state.events
        self.active: dict[int, list[InverterEvent]] = {}
        for serial, events in state.events.items():
            for event in events:
                if event.end_time is None:
                    self.active.setdefault(fleet.by_serial[serial].index, []).append(event)
        self._link_clearings(state.scheduled)
        self.lost = state.lost
        self.updating = state.updating
        self.dead = state.dead
        self.drifts = state.drifts
        self._actors: list[int] | None = None
        # The actor process runs at a rate fixed by the population at start (so it stays reproducible).
        self._actor_population = state.actor_population

    @classmethod
    def starting(cls, fleet: Fleet, seed: int, rates: Rates, start: datetime) -> Behaviour:
        """A new engine; nothing runs until :meth:`run_until`.

        Args:
            fleet: The fleet to act on.
            seed: Seed of the behaviour generator (independent of the fleet generator).
            rates: Happenings per inverter per day.
            start: Time from which spontaneous happenings are drawn.
        """
        rng = random.Random(seed * 1_000_003 + 17)  # noqa: S311 - simulation, not cryptography
        state = BehaviourState(
            time=start, random_state=rng.getstate(), sequence=0, scheduled=[],
            actor_population=sum(1 for device in fleet.devices if device.another_actor), events={}, lost={},
            updating=set(), dead={device.index for device in fleet.devices if device.status == "LOST"}, drifts=[],
        )  # fmt: skip
        behaviour = cls(fleet, rates, state)
        for kind, rate in behaviour._spawn_rates().items():
            if rate > 0:
                behaviour._schedule(start + behaviour._gap(rate, kind), kind)
        return behaviour

    def _link_clearings(self, scheduled: list[_Scheduled]) -> None:
        """Make each scheduled clearing refer to the open event it ends (a restored state has equal copies)."""
        opened: dict[tuple[str, datetime, str], list[InverterEvent]] = {}
        for events in self.active.values():
            for event in events:
                opened.setdefault((event.serial, event.start_time, event.event), []).append(event)
        for item in scheduled:
            if item.event is not None and item.event.end_time is None:
                item.event = opened[(item.event.serial, item.event.start_time, item.event.event)].pop(0)

    def state(self) -> BehaviourState:
        """What happened so far and what is scheduled (live: take a copy, such as a snapshot, before it moves on)."""
        return BehaviourState(
            time=self._time, random_state=self._rng.getstate(), sequence=self._sequence,
            scheduled=[item for _, _, item in self._queue], actor_population=self._actor_population,
            events=self.events, lost=self.lost, updating=self.updating, dead=self.dead, drifts=self.drifts,
        )  # fmt: skip

    @property
    def time(self) -> datetime:
        """Time up to which happenings have been run."""
        return self._time

    def forget(self, before: datetime) -> None:
        """Drop the fault events that ended and the drifts made before a time (open events stay)."""
        for serial, events in list(self.events.items()):
            kept = [event for event in events if event.end_time is None or event.end_time >= before]
            if kept:
                self.events[serial] = kept
            else:
                del self.events[serial]
        self.drifts[:] = [drift for drift in self.drifts if drift.time >= before]

    def _spawn_rates(self) -> dict[Happening, float]:
        return {
            Happening.SPAWN_FAULT: self._rates.fault,
            Happening.SPAWN_LOST: self._rates.lost,
            Happening.SPAWN_FIRMWARE: self._rates.firmware,
            Happening.SPAWN_DRIFT: self._rates.drift,
            Happening.SPAWN_ACTOR: self._rates.actor_drift if self._actor_population else 0.0,
        }

    def _gap(self, rate_per_inverter_day: float, kind: Happening | None = None) -> timedelta:
        population = self._actor_population if kind is Happening.SPAWN_ACTOR else len(self._fleet.devices)
        per_second = rate_per_inverter_day * max(1, population) / 86400
        return timedelta(seconds=max(1.0, self._rng.expovariate(per_second)))

    def _schedule(
        self, when: datetime, kind: Happening, device_index: int = -1, event: InverterEvent | None = None
    ) -> None:
        self._sequence += 1
        item = _Scheduled(when, self._sequence, kind, device_index, event)
        heapq.heappush(self._queue, (when.timestamp(), self._sequence, item))

    def run_until(self, until: datetime) -> None:
        """Run every happening due at or before ``until`` in time order."""
        limit = until.timestamp()
        while self._queue and self._queue[0][0] <= limit:
            item = heapq.heappop(self._queue)[2]
            self._time = item.time
            self._run(item)
        self._time = max(self._time, until)

    def _run(self, item: _Scheduled) -> None:
        rates = self._spawn_rates()
        if item.kind in rates:
            self._schedule(item.time + self._gap(rates[item.kind], item.kind), item.kind)
            device = self._pick_actor() if item.kind is Happening.SPAWN_ACTOR else self._pick()
            if device is None:
                return
            if item.kind is Happening.SPAWN_FAULT:
                self.start_fault(device, item.time)
            elif item.kind is Happening.SPAWN_LOST:
                self.start_lost(device, item.time, timedelta(seconds=self._rng.expovariate(1 / (4 * 3600))))
            elif item.kind is Happening.SPAWN_FIRMWARE:
                self.start_firmware_update(device, item.time)
            else:  # SPAWN_DRIFT, SPAWN_ACTOR
                self._drift(device, item.time)
            return
        device = self._fleet.devices[item.device_index]
        if item.kind is Happening.CLEAR_FAULT and item.event is not None:
            self.clear_fault(device, item.event, item.time)
        elif item.kind is Happening.BACK_ONLINE:
            self.lost.pop(device.index, None)
            self.settle(device)
        elif item.kind is Happening.FIRMWARE_DONE:
            self.updating.discard(device.index)
            device.arm += 1 + device.seed % 3
            device.dsp += 1 + device.seed % 2
            self.settle(device)

    def invalidate_actors(self) -> None:
        """Forget which inverters another actor holds (after a mutator changed it)."""
        self._actors = None

    def _pick_actor(self) -> Device | None:
        if self._actors is None:
            self._actors = [d.index for d in self._fleet.devices if d.another_actor]
        if not self._actors:
            return None
        device = self._fleet.devices[self._actors[self._rng.randrange(len(self._actors))]]
        return None if device.removed or device.index in self.dead else device

    def _pick(self) -> Device | None:
        devices = self._fleet.devices
        device = devices[self._rng.randrange(len(devices))]
        if device.removed or device.index in self.dead:
            return None
        return device

    # ---- happenings (also used by the test mutators) -----------------------------------------------------

    def settle(self, device: Device) -> None:
        """Recompute an inverter's status from its LOST/UPDATING/fault state."""
        index = device.index
        if index in self.dead or index in self.lost:
            device.status = "LOST"
        elif index in self.updating:
            device.status = "UPDATING"
        elif self.active.get(index):
            severities = {event.severity for event in self.active[index]}
            device.status = "ERROR" if "ERROR" in severities else "WARNING"
        else:
            device.status = device.status_before

    def start_fault(
        self, device: Device, when: datetime, name: str | None = None, duration: timedelta | None = None
    ) -> InverterEvent:
        """Open a fault event; it clears after ``duration`` (random, about two hours, when omitted)."""
        if name is None:
            name, severity = FAULTS[self._rng.randrange(len(FAULTS))]
        else:
            severity = dict(FAULTS).get(name, "ERROR")
        if duration is None:
            duration = timedelta(seconds=max(300.0, self._rng.expovariate(1 / 7200)))
        event = InverterEvent(device.serial, name, severity, when)
        self.events.setdefault(device.serial, []).append(event)
        self.active.setdefault(device.index, []).append(event)
        self._schedule(when + duration, Happening.CLEAR_FAULT, device.index, event)
        self.settle(device)
        return event

    def clear_fault(self, device: Device, event: InverterEvent, when: datetime) -> None:
        """Close a fault event (no-op if it already cleared)."""
        if event.end_time is not None:
            return
        event.end_time = when
        active = self.active.get(device.index, [])
        if event in active:
            active.remove(event)
        self.settle(device)

    def start_lost(self, device: Device, when: datetime, duration: timedelta) -> None:
        """Take an inverter offline (status LOST) until ``when + duration``."""
        if device.index in self.lost or device.index in self.updating:
            return
        self.lost[device.index] = when
        device.last_online = when
        device.last_updated = when
        self._schedule(when + max(duration, timedelta(minutes=5)), Happening.BACK_ONLINE, device.index)
        self.settle(device)

    def start_firmware_update(self, device: Device, when: datetime, duration: timedelta | None = None) -> None:
        """Status UPDATING, then a newer ARM/DSP firmware when the update finishes."""
        if device.index in self.updating or device.index in self.lost:
            return
        self.updating.add(device.index)
        self._schedule(when + (duration or timedelta(minutes=15)), Happening.FIRMWARE_DONE, device.index)
        self.settle(device)

    def _drift(self, device: Device, when: datetime) -> None:
        index = device.setting_index
        candidates = [index[setting_id] for setting_id in _DRIFTING_SETTINGS if setting_id in index]
        if not candidates:
            return
        setting = candidates[self._rng.randrange(len(candidates))]
        self.apply_drift(device, setting, self._random_value(setting), when)

    def apply_drift(self, device: Device, setting: Setting, value: bool | int | str, when: datetime) -> Drift:
        """Change a setting as another actor would (recorded in :attr:`drifts`)."""
        drift = Drift(when, device.serial, setting.id, device.true_value(setting), value)
        device.store(setting.id, value)
        self.drifts.append(drift)
        return drift

    def _random_value(self, setting: Setting) -> bool | int | str:
        rng = self._rng
        if setting.is_boolean:
            return rng.random() < 0.5
        if setting.is_time:
            return f"{rng.randrange(24):02d}:{rng.choice((0, 15, 30, 45)):02d}"
        bounds = rule_bounds(setting)
        if bounds is None:
            return setting.default
        low, high = bounds
        return int(rng.uniform(low, high))
