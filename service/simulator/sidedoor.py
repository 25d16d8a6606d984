"""The ground-truth side door (``/_simulator/...``): truth, clock control and fault injection over HTTP.

Mounted only in the simulator, unauthenticated, never rate limited. Every route mirrors a Python method of
:class:`service.simulator.Simulator` or :class:`service.simulator.truth.Truth`.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from service.simulator import render
from service.simulator.fleet import AccountType, Device
from service.simulator.records import ALL_SCOPES
from service.simulator.web import Request, Response, Router, invalid, not_found

if TYPE_CHECKING:
    from service.simulator.core import Simulator

MAX_ADVANCE = timedelta(days=365).total_seconds()
"""The longest move of the clock one request may ask for."""
MAX_SPEED = 10_000
"""The fastest clock one request may ask for (about a week per simulated minute): faster, the behaviour due at
each request would keep it waiting, and the clock would soon overflow the calendar."""


def _body(request: Request) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict):
        raise invalid({"body": ["A JSON object is required."]})
    return body


def _serials(body: dict[str, Any]) -> list[str]:
    serials = body.get("serials")
    if not isinstance(serials, list) or not all(isinstance(serial, str) for serial in serials):
        raise invalid({"serials": ["A list of serials is required."]})
    return serials


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if hasattr(value, "isoformat"):
        return render.iso(value) if hasattr(value, "tzinfo") else value.isoformat()
    return value


class SideDoor:
    """Handlers of ``/_simulator``."""

    def __init__(self, sim: Simulator) -> None:
        """Bind to a simulator."""
        self.sim = sim

    def routes(self, router: Router, prefix: str = "/_simulator") -> None:
        """Register the side-door routes."""
        table = [
            ("GET", "/tokens", self.tokens),
            ("POST", "/tokens", self.create_token),
            ("GET", "/clock", self.clock),
            ("POST", "/clock/advance", self.advance),
            ("POST", "/clock/speed", self.speed),
            ("GET", "/summary", self.summary),
            ("GET", "/fleet", self.fleet),
            ("GET", "/inverters/{serial}", self.inverter),
            ("GET", "/inverters/{serial}/settings", self.settings),
            ("POST", "/inverters/{serial}/settings/{setting}", self.drift),
            ("POST", "/inverters/{serial}/status", self.status),
            ("POST", "/inverters/{serial}/firmware", self.firmware),
            ("POST", "/inverters/state", self.state),
            ("POST", "/faults", self.faults),
            ("POST", "/faults/clear", self.clear_faults),
            ("POST", "/lost", self.lost),
            ("GET", "/events", self.events),
            ("GET", "/control-log", self.control_log),
            ("GET", "/counters", self.counters),
            ("GET", "/notifications", self.notifications),
            ("POST", "/dongles", self.add_dongle),
            ("DELETE", "/dongles/{serial}", self.remove_dongle),
            ("POST", "/dongles/{serial}/move", self.move_dongle),
        ]
        for method, path, handler in table:
            router.add(method, prefix + path, handler)

    def _device(self, serial: str) -> Device:
        try:
            return self.sim.truth.device(serial)
        except KeyError:
            raise not_found() from None

    def _device_truth(self, device: Device) -> dict[str, Any]:
        return {
            "serial": device.serial,
            "dongle_serial": device.dongle_serial,
            "model": device.model.name,
            "owner_id": device.owner_id,
            "site_id": device.site_id,
            "status": device.status,
            "firmware": {"ARM": device.arm, "DSP": device.dsp},
            "flags": list(device.flags),
            "locked": device.locked,
            "another_actor": device.another_actor,
            "forced_offline": device.forced_offline,
            "forced_timeout": device.forced_timeout,
            "removed": device.removed,
            "battery_count": device.battery_count,
            "max_charge_rate": device.max_charge_rate,
        }

    async def tokens(self, request: Request) -> Response:
        """GET /_simulator/tokens: every token with its account, scopes and flags."""
        return Response(200, {
            "data": [
                {"name": token.name, "token": token.value, "account_id": token.account_id,
                 "account_type": AccountType(self.sim.fleet.accounts[token.account_id].type).name.lower(),
                 "scopes": sorted(token.scopes), "approved": token.approved, "subscribed": token.subscribed}
                for token in self.sim.token_records()
            ]
        })  # fmt: skip

    async def create_token(self, request: Request) -> Response:
        """POST /_simulator/tokens {account_id, name?, scopes?, approved?, subscribed?, rate_limit?}."""
        body = _body(request)
        try:
            value = self.sim.create_token(
                int(body["account_id"]), name=body.get("name"), scopes=body.get("scopes", sorted(ALL_SCOPES)),
                approved=bool(body.get("approved", True)), subscribed=bool(body.get("subscribed", True)),
                rate_limit=int(body["rate_limit"]) if body.get("rate_limit") is not None else None,
            )  # fmt: skip
        except (KeyError, ValueError):
            raise invalid({"account_id": ["Unknown account."]}) from None
        return Response(201, {"token": value})

    async def clock(self, request: Request) -> Response:
        """GET /_simulator/clock."""
        return Response(200, {"now": render.iso(self.sim.now()), "speed": self.sim.clock.speed})

    async def advance(self, request: Request) -> Response:
        """POST /_simulator/clock/advance {"seconds": n}: at most :data:`MAX_ADVANCE` at once (behaviour runs
        through every simulated second, while the request waits)."""
        seconds = _body(request).get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 <= seconds <= MAX_ADVANCE:
            raise invalid({"seconds": [f"A number of seconds from 0 to {MAX_ADVANCE:.0f} (365 days) is required."]})
        now = self.sim.clock.advance(timedelta(seconds=seconds))
        return Response(200, {"now": render.iso(now)})

    async def speed(self, request: Request) -> Response:
        """POST /_simulator/clock/speed {"speed": x}: simulated seconds per real second, 0 (frozen) to
        :data:`MAX_SPEED`."""
        speed = _body(request).get("speed")
        if not isinstance(speed, int | float) or isinstance(speed, bool) or not 0 <= speed <= MAX_SPEED:
            raise invalid({"speed": [f"A speed from 0 to {MAX_SPEED} (simulated seconds per real second) is "
                                     "required."]})
        self.sim.now()  # run what fell due at the old speed first
        self.sim.clock.set_speed(float(speed))
        return Response(200, {"now": render.iso(self.sim.now()), "speed": self.sim.clock.speed})

    async def summary(self, request: Request) -> Response:
        """GET /_simulator/summary."""
        return Response(200, self.sim.truth.summary())

    async def fleet(self, request: Request) -> Response:
        """GET /_simulator/fleet: accounts (with parents), sites and devices as the truth has them."""
        truth = self.sim.truth
        accounts = [
            {"id": a.id, "username": a.username, "type": AccountType(a.type).name.lower(), "role": a.role,
             "parent_id": a.parent_id, "views": a.views, "standard_timezone": a.standard_timezone}
            for a in truth.accounts()
        ]  # fmt: skip
        sites = [{"id": s.id, "account_id": s.account_id, "status": s.status} for s in truth.sites()]
        devices = [self._device_truth(device) for device in truth.devices()]
        return Response(200, {"accounts": accounts, "sites": sites, "devices": devices})

    async def inverter(self, request: Request) -> Response:
        """GET /_simulator/inverters/{serial}."""
        device = self._device(request.params["serial"])
        answer = self._device_truth(device)
        answer["settings"] = _jsonable(self.sim.truth.settings(device.serial))
        answer["events"] = [render.event(event) for event in self.sim.truth.events(device.serial)]
        return Response(200, answer)

    async def settings(self, request: Request) -> Response:
        """GET /_simulator/inverters/{serial}/settings: true values by setting id."""
        device = self._device(request.params["serial"])
        return Response(200, _jsonable(self.sim.truth.settings(device.serial)))

    async def drift(self, request: Request) -> Response:
        """POST /_simulator/inverters/{serial}/settings/{id} {"value": v}: another actor changes a setting."""
        device = self._device(request.params["serial"])
        setting = request.params["setting"]
        if not setting.isdigit() or int(setting) not in device.setting_index:
            raise not_found()
        try:
            drift = self.sim.drift_setting(device.serial, int(setting), _body(request).get("value"))
        except ValueError as error:
            raise invalid({"value": [str(error)]}) from None
        return Response(200, _jsonable(asdict(drift)))

    async def status(self, request: Request) -> Response:
        """POST /_simulator/inverters/{serial}/status {"status": "LOST"}."""
        device = self._device(request.params["serial"])
        status = _body(request).get("status")
        if not isinstance(status, str) or not status:
            raise invalid({"status": ["A status is required."]})
        self.sim.set_status(device.serial, status)
        return Response(200, self._device_truth(device))

    async def firmware(self, request: Request) -> Response:
        """POST /_simulator/inverters/{serial}/firmware {arm?, dsp?, duration_seconds?}."""
        device = self._device(request.params["serial"])
        body = _body(request)
        duration = timedelta(seconds=float(body.get("duration_seconds", 900)))
        self.sim.update_firmware(device.serial, duration, arm=body.get("arm"), dsp=body.get("dsp"))
        return Response(200, self._device_truth(device))

    async def state(self, request: Request) -> Response:
        """POST /_simulator/inverters/state {serials, offline?, locked?, timeout?, another_actor?}."""
        body = _body(request)
        serials = _serials(body)
        for serial in serials:
            self._device(serial)
        actions = {
            "offline": self.sim.set_offline, "locked": self.sim.set_locked, "timeout": self.sim.set_timeout,
            "another_actor": self.sim.set_another_actor,
        }  # fmt: skip
        for key, action in actions.items():
            if key in body:
                action(serials, bool(body[key]))
        return Response(200, {"data": [self._device_truth(self._device(serial)) for serial in serials]})

    async def faults(self, request: Request) -> Response:
        """POST /_simulator/faults {serials, event?, duration_seconds?}: open faults now."""
        body = _body(request)
        serials = _serials(body)
        for serial in serials:
            self._device(serial)
        duration = timedelta(seconds=float(body.get("duration_seconds", 3600)))
        events = self.sim.inject_fault(serials, str(body.get("event", "PV Over Voltage")), duration)
        return Response(201, {"data": [render.event(event) | {"serial": event.serial} for event in events]})

    async def clear_faults(self, request: Request) -> Response:
        """POST /_simulator/faults/clear {serials}."""
        serials = _serials(_body(request))
        for serial in serials:
            self._device(serial)
        self.sim.clear_faults(serials)
        return Response(200, {"success": True})

    async def lost(self, request: Request) -> Response:
        """POST /_simulator/lost {serials, duration_seconds?}: status LOST for a while."""
        body = _body(request)
        serials = _serials(body)
        for serial in serials:
            self._device(serial)
        self.sim.make_lost(serials, timedelta(seconds=float(body.get("duration_seconds", 3600))))
        return Response(200, {"success": True})

    async def events(self, request: Request) -> Response:
        """GET /_simulator/events?serial=."""
        serial = request.arg("serial")
        if serial:
            self._device(serial)
        return Response(200, {
            "data": [render.event(event) | {"serial": event.serial} for event in self.sim.truth.events(serial)]
        })  # fmt: skip

    async def control_log(self, request: Request) -> Response:
        """GET /_simulator/control-log?since=N (N = entries already seen; ``total`` counts forgotten ones too)."""
        since = request.arg("since") or "0"
        if not since.isdigit():
            raise invalid({"since": ["An integer is required."]})
        forgotten, log = self.sim.control_calls_forgotten, self.sim.control_log
        entries = log[max(0, int(since) - forgotten) :]
        return Response(200, {"total": forgotten + len(log), "data": [_jsonable(asdict(e)) for e in entries]})

    async def counters(self, request: Request) -> Response:
        """GET /_simulator/counters: requests and 429s per token name."""
        return Response(200, {
            name: {"requests": c.requests, "throttled": c.throttled, "by_status": _jsonable(c.by_status)}
            for name, c in self.sim.counters.items()
        })  # fmt: skip

    async def notifications(self, request: Request) -> Response:
        """GET /_simulator/notifications."""
        return Response(200, {"data": _jsonable(self.sim.notifications)})

    async def add_dongle(self, request: Request) -> Response:
        """POST /_simulator/dongles {account_id, model?}."""
        body = _body(request)
        try:
            device = self.sim.add_dongle(int(body["account_id"]), str(body.get("model", "GIV-HY5.0")))
        except (KeyError, ValueError) as error:
            raise invalid({"account_id": [str(error)]}) from None
        return Response(201, self._device_truth(device))

    async def remove_dongle(self, request: Request) -> Response:
        """DELETE /_simulator/dongles/{serial}."""
        device = self._device(request.params["serial"])
        self.sim.remove_dongle(device.serial)
        return Response(200, {"success": True})

    async def move_dongle(self, request: Request) -> Response:
        """POST /_simulator/dongles/{serial}/move {account_id}."""
        device = self._device(request.params["serial"])
        body = _body(request)
        try:
            self.sim.move_dongle(device.serial, int(body["account_id"]))
        except (KeyError, ValueError) as error:
            raise invalid({"account_id": [str(error)]}) from None
        return Response(200, self._device_truth(device))
