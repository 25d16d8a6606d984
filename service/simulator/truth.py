"""Ground truth: what the simulated world really is, for tests and rehearsals (never for givfleet itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.simulator import render
from service.simulator.behaviour import Drift, InverterEvent
from service.simulator.fleet import Account, AccountType, Device, EvCharger, Site, SmartDevice

if TYPE_CHECKING:
    from service.simulator.core import Simulator
    from service.simulator.records import ControlCall, Counters


class Truth:
    """Read-only views of the simulated world (``sim.truth``).

    Records returned are the live internal objects: read them, change the world through the simulator's
    mutators. Reads of time-dependent state first run the behaviour due on a running clock.
    """

    def __init__(self, sim: Simulator) -> None:
        """Wrap a simulator."""
        self._sim = sim

    # ---- fleet --------------------------------------------------------------------------------------------

    def accounts(self) -> list[Account]:
        """Every account, by id."""
        return [self._sim.fleet.accounts[key] for key in sorted(self._sim.fleet.accounts)]

    def account(self, account_id: int) -> Account:
        """One account."""
        return self._sim.fleet.accounts[account_id]

    def account_of_token(self, token: str) -> Account:
        """The account behind a bearer token or a token name (``"company"``)."""
        value = self._sim.tokens.get(token, token)
        record = self._sim.token(value)
        if record is None:
            raise KeyError("unknown token")
        return self._sim.fleet.accounts[record.account_id]

    def children(self, account_id: int) -> list[Account]:
        """Every descendant of an account."""
        return [self._sim.fleet.accounts[key] for key in self._sim.fleet.subtree(account_id)]

    def devices(self, *, include_removed: bool = False) -> list[Device]:
        """Every communication device with its inverter, in list order."""
        self._sim.now()
        return [d for d in self._sim.fleet.devices if include_removed or not d.removed]

    def device(self, serial: str) -> Device:
        """A device by inverter or dongle serial."""
        fleet = self._sim.fleet
        device = fleet.by_serial.get(serial) or fleet.by_dongle.get(serial)
        if device is None:
            raise KeyError(serial)
        return device

    def visible_devices(self, token: str) -> list[Device]:
        """Devices a token (bearer string or name) sees on GET /communication-device, in API order."""
        return list(self._sim.fleet.devices_of(self.account_of_token(token).id))

    def visible_serials(self, token: str) -> list[str]:
        """Inverter serials a token sees."""
        return [device.serial for device in self.visible_devices(token)]

    def sites(self) -> list[Site]:
        """Every site."""
        return [self._sim.fleet.sites[key] for key in sorted(self._sim.fleet.sites)]

    def ev_chargers(self) -> list[EvCharger]:
        """Every EV charger."""
        return list(self._sim.fleet.ev_chargers.values())

    def smart_devices(self) -> list[SmartDevice]:
        """Every smart device."""
        return list(self._sim.fleet.smart_devices.values())

    def communication_device_json(self, serial: str) -> dict[str, Any]:
        """The exact object GET /communication-device/{serial} would answer now."""
        device = self.device(serial)
        last_updated, last_online = self._sim.last_seen(device, self._sim.now())
        return render.communication_device(device, last_updated, last_online)

    # ---- settings and control -----------------------------------------------------------------------------

    def settings(self, serial: str) -> dict[int, bool | int | str]:
        """True setting values of an inverter (canonical types: bool, int, "HH:MM")."""
        self._sim.now()
        device = self.device(serial)
        return {entry.id: device.true_value(entry) for entry in device.catalogue}

    def setting(self, serial: str, setting_id: int) -> bool | int | str:
        """One true setting value."""
        device = self.device(serial)
        return device.true_value(device.setting_index[setting_id])

    def control_log(self) -> list[ControlCall]:
        """Every control call received, oldest first (one entry per serial for multi-control)."""
        return list(self._sim.control_log)

    def drifts(self) -> list[Drift]:
        """Setting changes made by "another actor", oldest first."""
        self._sim.now()
        return list(self._sim.behaviour.drifts)

    # ---- events and counters ------------------------------------------------------------------------------

    def events(self, serial: str | None = None) -> list[InverterEvent]:
        """Fault events (of one inverter, or all), oldest first."""
        self._sim.now()
        behaviour = self._sim.behaviour
        if serial is not None:
            return sorted(behaviour.events.get(self.device(serial).serial, []), key=lambda e: e.start_time)
        every = [event for events in behaviour.events.values() for event in events]
        return sorted(every, key=lambda event: (event.start_time, event.serial))

    def counters(self) -> dict[str, Counters]:
        """Requests and 429s per token name."""
        return dict(self._sim.counters)

    def notifications(self) -> list[dict[str, Any]]:
        """Notifications accepted by POST /notification/send."""
        return list(self._sim.notifications)

    def summary(self) -> dict[str, Any]:
        """Counts of what the fleet holds (accounts per type, devices per model and status)."""
        self._sim.now()
        fleet = self._sim.fleet
        by_type: dict[str, int] = {}
        for account in fleet.accounts.values():
            by_type[AccountType(account.type).name.lower()] = by_type.get(AccountType(account.type).name.lower(), 0) + 1
        by_model: dict[str, int] = {}
        by_status: dict[str, int] = {}
        for device in fleet.devices:
            if device.removed:
                continue
            by_model[device.model.name] = by_model.get(device.model.name, 0) + 1
            by_status[device.status] = by_status.get(device.status, 0) + 1
        return {
            "accounts": by_type,
            "devices": sum(by_model.values()),
            "models": by_model,
            "statuses": by_status,
            "sites": len(fleet.sites),
            "ev_chargers": len(fleet.ev_chargers),
            "smart_devices": len(fleet.smart_devices),
        }
