"""The :class:`Simulator`: fleet, clock, behaviour, tokens, control semantics, ground truth and mutators."""

from __future__ import annotations

import random
from asyncio import sleep
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from service.simulator.app import build_app
from service.simulator.behaviour import Behaviour, Drift, InverterEvent, Rates
from service.simulator.catalogue import MODEL_BY_NAME, Setting, coerce
from service.simulator.clock import SimulationClock
from service.simulator.config import SimulatorConfig
from service.simulator.fleet import (
    Account,
    AccountType,
    Device,
    Fleet,
    FleetGenerator,
    Fractions,
    Site,
    dead_since,
    make_serial,
    token_for,
)
from service.simulator.ratelimit import RateLimiter
from service.simulator.records import (
    ALL_SCOPES,
    MAYBE_APPLIED_CODES,
    READ_ONLY_SCOPES,
    ControlCall,
    Counters,
    DeviceAnswer,
    Token,
)
from service.simulator.snapshot import FORMAT, Snapshot
from service.simulator.truth import Truth
from service.simulator.web import Receive, Scope, Send

NOTIFICATIONS_KEPT = 1000
"""Notifications :meth:`Simulator.forget` keeps (the latest)."""

_InjectedFlag = Literal["forced_offline", "locked", "forced_timeout", "another_actor"]
"""The :class:`Device` flags that ``set_offline``, ``set_locked``, ``set_timeout`` and ``set_another_actor`` set."""


class Simulator:
    """A fake GivEnergy Cloud. See the package docstring for the public surface."""

    def __init__(self, config: SimulatorConfig | None = None, *, resume: Snapshot | None = None) -> None:
        """Generate the fleet and its history (or carry on from a snapshot), and set up the clock, behaviour,
        tokens and HTTP app.

        Args:
            config: Configuration (defaults to :class:`SimulatorConfig()`).
            resume: A snapshot of this configuration's world (:meth:`snapshot`) to carry on from instead of
                generating it; the clock starts at ``config.start_time`` (or now), or at the snapshot's time if
                that is later.
        """
        self.config = config or SimulatorConfig()
        cfg = self.config
        start = cfg.start_time or datetime.now(UTC).replace(microsecond=0)
        rates = Rates(
            cfg.fault_rate_per_day, cfg.lost_rate_per_day, cfg.firmware_update_rate_per_day,
            cfg.setting_drift_rate_per_day, cfg.actor_drift_rate_per_day,
        )  # fmt: skip
        if resume is None:
            self.fleet = self._generate(start)
            self.behaviour = Behaviour.starting(self.fleet, cfg.seed, rates, start - timedelta(days=cfg.history_days))
        else:
            self.fleet = Fleet(resume.fleet)
            self.behaviour = Behaviour(self.fleet, rates, resume.behaviour)
            start = max(start, resume.reached, resume.behaviour.time)
        self.behaviour.run_until(start)
        self.clock = SimulationClock(start, cfg.clock_speed)
        self.clock.bind(self.behaviour.run_until)
        self._control_rng = random.Random(cfg.seed * 7_919 + 3)  # noqa: S311 - simulation, not cryptography
        self._error_rng = random.Random(cfg.seed * 104_729 + 5)  # noqa: S311
        self.limiter = RateLimiter()
        self.counters: dict[str, Counters] = {}
        self.control_log: list[ControlCall] = []
        self.control_calls_forgotten = 0  # dropped by forget: control_log[i] is call number forgotten + i
        self.notifications: list[dict[str, Any]] = []
        self.legacy_sessions: dict[str, int] = {}
        self._tokens: dict[str, Token] = {}
        self.tokens: dict[str, str] = {}
        if resume is None:
            self._make_default_tokens()
        else:
            self._carry_on(resume)
        self.truth = Truth(self)
        self.app = build_app(self)

    def _generate(self, start: datetime) -> Fleet:
        """A new fleet of the configuration, its dead inverters gone weeks before ``start``."""
        cfg = self.config
        fractions = Fractions(
            locked=cfg.locked_fraction,
            another_actor=cfg.another_actor_fraction,
            not_controllable=cfg.not_controllable_fraction,
            dead=cfg.dead_fraction,
            new_status=cfg.new_status_fraction,
            ev_charger=cfg.ev_charger_fraction,
            smart_device=cfg.smart_device_fraction,
        )
        fleet = FleetGenerator(cfg.seed, cfg.fleet_size, fractions).build()
        for device in fleet.devices:
            if device.status == "LOST":
                device.last_online = device.last_updated = dead_since(device, start)
        return fleet

    def _carry_on(self, snapshot: Snapshot) -> None:
        """Take the tokens, logs, counters and generators of a snapshot."""
        self._control_rng.setstate(snapshot.control_random_state)
        self._error_rng.setstate(snapshot.error_random_state)
        self.counters = snapshot.counters
        self.control_log = snapshot.control_log
        self.control_calls_forgotten = snapshot.control_calls_forgotten
        self.notifications = snapshot.notifications
        for token in snapshot.tokens:
            self._tokens[token.value] = token
            self.tokens[token.name] = token.value

    def snapshot(self, ahead: timedelta = timedelta(0)) -> Snapshot:
        """The world as it is now, due behaviour run first (:mod:`.snapshot` writes and reads it).

        Args:
            ahead: How far past now the clock may go before the next snapshot: a simulator resumed from this one
                starts no earlier than now plus ``ahead``.

        Returns:
            The snapshot; it shares the live records, so write it out before the world moves on.
        """
        now = self.now()
        cfg = self.config
        return Snapshot(
            format=FORMAT, seed=cfg.seed, fleet_size=cfg.fleet_size, reached=now + ahead,
            fleet=self.fleet.records(), behaviour=self.behaviour.state(), tokens=list(self._tokens.values()),
            control_log=self.control_log, control_calls_forgotten=self.control_calls_forgotten,
            counters=self.counters, notifications=self.notifications,
            control_random_state=self._control_rng.getstate(), error_random_state=self._error_rng.getstate(),
        )  # fmt: skip

    def forget(self, before: datetime) -> None:
        """Drop what no longer matters, so that a world kept for months stays small: the fault events that ended,
        the drifts and the control calls from before a time (the cloud's event queries, the truth and the side door
        then answer without them), and all but the latest :data:`NOTIFICATIONS_KEPT` notifications."""
        self.behaviour.forget(before)
        kept = [call for call in self.control_log if call.time >= before]
        self.control_calls_forgotten += len(self.control_log) - len(kept)
        self.control_log[:] = kept
        del self.notifications[:-NOTIFICATIONS_KEPT]

    # ---- tokens -------------------------------------------------------------------------------------------

    def _make_default_tokens(self) -> None:
        named = self.fleet.named_accounts
        seed = self.config.seed
        specs: list[tuple[str, str, frozenset[str], bool, bool]] = [
            ("distributor", "distributor", ALL_SCOPES, True, True),
            ("company", "company", ALL_SCOPES, True, True),
            ("company_unapproved", "company", ALL_SCOPES, False, True),
            ("company_readonly", "company", READ_ONLY_SCOPES, True, True),
            ("other_company", "other_company", ALL_SCOPES, True, True),
            ("engineer", "engineer", ALL_SCOPES, True, True),
            ("customer", "customer", ALL_SCOPES, True, True),
            ("viewer", "viewer", ALL_SCOPES, True, True),
            ("no_subscription", "company", ALL_SCOPES, True, False),
        ]
        if "sub_contractor" in named:
            specs.append(("sub_contractor", "sub_contractor", ALL_SCOPES, True, True))
        for name, account_key, scopes, approved, subscribed in specs:
            if account_key not in named:
                continue
            self.create_token(named[account_key], name=name, scopes=scopes, approved=approved,
                              subscribed=subscribed, value=token_for(seed, name))  # fmt: skip

    def create_token(
        self,
        account_id: int,
        *,
        name: str | None = None,
        scopes: Iterable[str] = ALL_SCOPES,
        approved: bool = True,
        subscribed: bool = True,
        value: str | None = None,
        rate_limit: int | None = None,
    ) -> str:
        """Mint a bearer token for any account (e.g. with fewer scopes) and return it.

        Args:
            account_id: Account the token acts as.
            name: Name in :attr:`tokens` and in the control log (defaults to ``token-<n>``).
            scopes: Granted scopes.
            approved: Approved-user flag.
            subscribed: Subscription flag.
            value: Bearer string (derived from the seed and name when omitted).
            rate_limit: Custom global requests per window (a commercial tier); default: the configured one.
        """
        if account_id not in self.fleet.accounts:
            raise KeyError(f"no account {account_id}")
        name = name or f"token-{len(self._tokens) + 1}"
        value = value or token_for(self.config.seed, f"custom:{name}:{account_id}")
        self._tokens[value] = Token(value, name, account_id, frozenset(scopes), approved, subscribed, rate_limit)
        self.tokens[name] = value
        return value

    def token(self, value: str) -> Token | None:
        """The token record for a bearer string."""
        return self._tokens.get(value)

    def token_records(self) -> list[Token]:
        """All tokens."""
        return list(self._tokens.values())

    # ---- time ---------------------------------------------------------------------------------------------

    def now(self) -> datetime:
        """Simulation time, with due behaviour run first (called on every request)."""
        current = self.clock.now()
        if current > self.behaviour.time:
            self.behaviour.run_until(current)
        return current

    def last_seen(self, device: Device, now: datetime) -> tuple[datetime, datetime]:
        """``(last_updated, last_online)`` of an inverter at ``now``."""
        if device.status == "LOST":
            return device.last_updated, device.last_online
        recent = now - timedelta(seconds=int(now.timestamp()) % 300 + device.seed % 240)
        return recent, recent

    def site_zone(self, device: Device) -> str:
        """IANA timezone of a device's site."""
        site = self.fleet.sites.get(device.site_id)
        return site.tz_timezone if site is not None else "Europe/London"

    # ---- control semantics --------------------------------------------------------------------------------

    async def device_latency(self) -> None:
        """Wait like a device call does (``latency_seconds`` of real time)."""
        if self.config.latency_seconds > 0:
            await sleep(self.config.latency_seconds)

    def _failure(self, device: Device, *, write: bool) -> int | None:
        if device.forced_offline or device.status == "LOST":
            return -2
        if device.forced_timeout:
            return -1
        if device.locked and write:  # the lock holder blocks changes; reads still answer
            return -7
        probabilities = self.config.control_error_probabilities
        if probabilities:
            draw = self._control_rng.random()
            cumulative = 0.0
            for code in sorted(probabilities, reverse=True):
                cumulative += probabilities[code]
                if draw < cumulative:
                    return code
        return None

    def clamp(self, device: Device, setting: Setting, value: bool | int | str) -> bool | int | str:
        """The value the device stores for a requested one (its own range can be narrower than the rule)."""
        if setting.id == 72 and isinstance(value, int) and not isinstance(value, bool):
            return min(value, device.max_charge_rate)
        if setting.id == 73 and isinstance(value, int) and not isinstance(value, bool):
            return min(value, device.max_discharge_rate)
        return value

    def device_write(self, device: Device, setting: Setting, value: bool | int | str) -> DeviceAnswer:
        """Apply a validated write with the real service's semantics.

        Returns a failure code (-1..-7) or the value the device reports; writes to inverters held by another
        actor or without ``is-controllable`` are answered as written but not applied.
        """
        code = self._failure(device, write=True)
        if code is not None:
            applied = code in MAYBE_APPLIED_CODES and self._control_rng.random() < 0.5
            if applied and not setting.write_only:
                device.store(setting.id, self.clamp(device, setting, value))
            return DeviceAnswer(code, code, applied)
        if setting.write_only:
            return DeviceAnswer(None, value, True)
        if device.another_actor or not device.controllable:
            return DeviceAnswer(None, value, False)
        stored = self.clamp(device, setting, value)
        device.store(setting.id, stored)
        return DeviceAnswer(None, stored, True)

    def device_read(self, device: Device, setting: Setting) -> DeviceAnswer:
        """Read a setting: a failure code or the true value."""
        code = self._failure(device, write=False)
        if code is not None:
            return DeviceAnswer(code, code, False)
        return DeviceAnswer(None, device.true_value(setting), False)

    def log_control(self, call: ControlCall) -> None:
        """Record a control call in the ground truth."""
        self.control_log.append(call)

    def random_server_error(self) -> int | None:
        """A 5xx/504 status to answer instead of the real one, per the configured probabilities."""
        cfg = self.config
        if not cfg.server_error_probability and not cfg.gateway_timeout_probability:
            return None
        draw = self._error_rng.random()
        if draw < cfg.gateway_timeout_probability:
            return 504
        if draw < cfg.gateway_timeout_probability + cfg.server_error_probability:
            return (500, 502, 503)[self._error_rng.randrange(3)]
        return None

    def count(self, token_name: str, status: int) -> None:
        """Count a request (and a 429) for a token."""
        counters = self.counters.setdefault(token_name, Counters())
        counters.requests += 1
        if status == 429:
            counters.throttled += 1
        counters.by_status[status] = counters.by_status.get(status, 0) + 1

    # ---- mutators -----------------------------------------------------------------------------------------

    def _device(self, serial: str) -> Device:
        device = self.fleet.by_serial.get(serial) or self.fleet.by_dongle.get(serial)
        if device is None:
            raise KeyError(f"no inverter or dongle {serial}")
        return device

    def _set_flag(self, serials: Iterable[str], flag: _InjectedFlag, value: bool) -> None:
        for serial in serials:
            setattr(self._device(serial), flag, value)

    def set_offline(self, serials: Iterable[str], offline: bool = True) -> None:
        """Make inverters unreachable for device calls (-2) without changing their reported status."""
        self._set_flag(serials, "forced_offline", offline)

    def set_locked(self, serials: Iterable[str], locked: bool = True) -> None:
        """Lock inverters (writes answer -7 "Inverter Locked"; reads still answer)."""
        self._set_flag(serials, "locked", locked)

    def set_timeout(self, serials: Iterable[str], timeout: bool = True) -> None:
        """Make device calls to these inverters time out (-1)."""
        self._set_flag(serials, "forced_timeout", timeout)

    def set_another_actor(self, serials: Iterable[str], owned: bool = True) -> None:
        """Let another actor own inverters: writes answer success but are not applied."""
        self._set_flag(serials, "another_actor", owned)
        self.behaviour.invalidate_actors()

    def set_status(self, serial: str, status: str) -> None:
        """Set an inverter's reported status (NORMAL, WAITING, LOST, ERROR, WARNING, UPDATING, OFF_GRID, ...).

        LOST freezes ``last_online``/``last_updated`` at the current time; any other status brings it back.
        """
        device = self._device(serial)
        now = self.now()
        behaviour = self.behaviour
        if status == "LOST":
            if device.status != "LOST":
                device.last_online = device.last_updated = now
            behaviour.dead.add(device.index)
        else:
            behaviour.dead.discard(device.index)
            behaviour.lost.pop(device.index, None)
            behaviour.updating.discard(device.index)
        if status not in ("LOST", "UPDATING", "ERROR", "WARNING"):
            device.status_before = status
        device.status = status

    def inject_fault(
        self, serials: Iterable[str], event: str = "PV Over Voltage", duration: timedelta = timedelta(hours=1)
    ) -> list[InverterEvent]:
        """Open a fault on inverters now; it clears by itself after ``duration`` of simulated time."""
        now = self.now()
        return [self.behaviour.start_fault(self._device(serial), now, event, duration) for serial in serials]

    def clear_faults(self, serials: Iterable[str]) -> None:
        """Clear every open fault of these inverters now."""
        now = self.now()
        for serial in serials:
            device = self._device(serial)
            for event in list(self.behaviour.active.get(device.index, [])):
                self.behaviour.clear_fault(device, event, now)

    def make_lost(self, serials: Iterable[str], duration: timedelta = timedelta(hours=1)) -> None:
        """Take inverters offline (status LOST) for ``duration`` of simulated time, then back."""
        now = self.now()
        for serial in serials:
            self.behaviour.start_lost(self._device(serial), now, duration)

    def update_firmware(
        self, serial: str, duration: timedelta = timedelta(minutes=15), arm: int | None = None, dsp: int | None = None
    ) -> None:
        """Start a firmware update (status UPDATING); with ``arm``/``dsp`` the versions are set at once."""
        device = self._device(serial)
        if arm is not None or dsp is not None:
            device.arm = arm if arm is not None else device.arm
            device.dsp = dsp if dsp is not None else device.dsp
            return
        self.behaviour.start_firmware_update(device, self.now(), duration)

    def drift_setting(self, serial: str, setting_id: int, value: object) -> Drift:
        """Change a setting as another actor would (validated against the setting's rules)."""
        device = self._device(serial)
        setting = device.setting_index[setting_id]
        return self.behaviour.apply_drift(device, setting, coerce(setting, value), self.now())

    def add_dongle(self, account_id: int, model: str = "GIV-HY5.0", site_id: int | None = None) -> Device:
        """Register a new communication device with an inverter to a customer account.

        Args:
            account_id: Owning customer account.
            model: Model name (one of the catalogue's).
            site_id: Site to place it on (the owner's first site, or a new one).

        Returns:
            The new device record.
        """
        fleet = self.fleet
        owner = fleet.accounts[account_id]
        if owner.type is not AccountType.CUSTOMER:
            raise ValueError("devices belong to customer accounts")
        index = len(fleet.devices)
        template = fleet.devices[0]
        number = 259_999_999 - index
        device = Device(index, make_serial("ZZ", number), make_serial("WZ", number), MODEL_BY_NAME[model])
        device.seed = (template.seed * 31 + index) & ((1 << 48) - 1)
        device.owner_id = account_id
        device.flags = ("is-controllable",)
        device.max_charge_rate = device.max_discharge_rate = device.model.battery_max_w
        device.battery_count = 1 if device.model.has_battery else 0
        now = self.now()
        device.commission_date = device.warranty_expiry = now
        device.warranty_expiry = now + timedelta(days=3650)
        device.site_id = site_id if site_id is not None else self._site_for(owner)
        fleet.devices.append(device)
        fleet.by_serial[device.serial] = device
        fleet.by_dongle[device.dongle_serial] = device
        owner.device_ids.append(index)
        fleet.invalidate()
        return device

    def remove_dongle(self, serial: str) -> None:
        """Remove a communication device (by dongle or inverter serial) from every account."""
        device = self._device(serial)
        device.removed = True
        self.fleet.invalidate()

    def move_dongle(self, serial: str, account_id: int) -> None:
        """Move a communication device (by dongle or inverter serial) to another customer account."""
        device = self._device(serial)
        fleet = self.fleet
        target = fleet.accounts[account_id]
        if target.type is not AccountType.CUSTOMER:
            raise ValueError("devices belong to customer accounts")
        fleet.accounts[device.owner_id].device_ids.remove(device.index)
        target.device_ids.append(device.index)
        device.owner_id = account_id
        device.removed = False
        device.site_id = self._site_for(target, exclude=device)
        fleet.invalidate()

    def _site_for(self, owner: Account, exclude: Device | None = None) -> int:
        """The owner's first site, or a new one for an owner without devices."""
        fleet = self.fleet
        for device in fleet.devices:
            if device.owner_id == owner.id and device is not exclude and not device.removed:
                return device.site_id
        site_id = max(fleet.sites) + 1 if fleet.sites else 1
        site = Site(site_id, owner.id, f"{owner.first_name} {owner.surname}")
        site.tz_timezone, site.timezone, site.country = owner.standard_timezone, owner.timezone, owner.country
        site.date_created = self.now().date().isoformat()
        fleet.sites[site_id] = site
        return site_id

    def account(self, account_id: int) -> Account:
        """An account record."""
        return self.fleet.accounts[account_id]

    # ---- ASGI ---------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The simulator is itself an ASGI app (same as :attr:`app`)."""
        await self.app(scope, receive, send)
