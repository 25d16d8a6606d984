"""A simulator with one of everything the documentation talks about (shared by conformance and auth tests)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from service.simulator import Simulator, SimulatorConfig
from service.simulator.catalogue import Kind
from tests.simulator.docspec import Endpoint

# Setting values come back in mixed types (REAL-WORLD-BEHAVIOUR.md), so the example's number is not binding.
LOOSE = frozenset({"$.data.value"})


class World:
    """A simulator with one of everything the documentation talks about, and the ids to fill paths with."""

    def __init__(self) -> None:
        self.sim = Simulator(SimulatorConfig.quiet(fleet_size=30, seed=4))
        truth = self.sim.truth
        self.customer = truth.account_of_token("customer")
        self.engineer = truth.account_of_token("engineer")
        own = truth.visible_devices("customer")
        hybrids = [d for d in own if d.model.kind is Kind.HYBRID]
        self.inverter = hybrids[0] if hybrids else self.sim.add_dongle(self.customer.id, "GIV-HY5.0")
        self.other = self.sim.add_dongle(self.customer.id, "GIV-AC3.0")
        self.ems = self.sim.add_dongle(self.customer.id, "Plant EMS")
        self.sim.inject_fault([self.inverter.serial], "PV Over Voltage", timedelta(minutes=20))
        self.sim.clock.advance(timedelta(hours=1))
        self.sim.inject_fault([self.inverter.serial], "Grid Over Frequency", timedelta(hours=2))
        self.charger = next(c for c in truth.ev_chargers() if c.owner_id == self.customer.id)
        self.smart = next(s for s in truth.smart_devices() if s.owner_id == self.customer.id)
        self.smart.points.append((self.sim.now() - timedelta(minutes=5), 300))
        self.site_id = self.inverter.site_id
        self.sim.fleet.sites[self.site_id].status = "opted_in"
        self.today = self.sim.now().date().isoformat()

    def path(self, endpoint: Endpoint) -> str:
        """The documented path with the documentation's placeholder values replaced by real ones."""
        path = endpoint.path
        replacements = {
            "/account/1234": f"/account/{self.customer.id}",
            "/account-children/1234": f"/account-children/{self.engineer.id}",
            "/account/qkunze/devices": f"/account/{self.customer.username}/devices",
            "/account/search/qkunze": f"/account/search/{self.customer.username}",
            "/communication-device/consequatur": f"/communication-device/{self.inverter.dongle_serial}",
            "/ems/consequatur": f"/ems/{self.ems.serial}",
            "/presets/consequatur": "/presets/0",
            "/data-points/consequatur": f"/data-points/{self.today}",
            "CE1234G567": self.inverter.serial,
            "/site/17": f"/site/{self.site_id}",
        }
        for old, new in replacements.items():
            path = path.replace(old, new)
        uuid = self.smart.uuid if path.startswith("/smart-device") else self.charger.uuid
        path = path.replace("66529e01-d113-3473-8d6f-9e11e09332ea", uuid)
        if endpoint.method == "GET" and path.endswith("/commands/setup-version"):
            # "The below response example is for the change-mode command"
            path = path.replace("setup-version", "change-mode")
        return path

    def request(self, endpoint: Endpoint) -> tuple[dict[str, Any], Any]:
        """Query parameters and JSON body for an endpoint (valid values in the documented names)."""
        day = self.today
        start, end = (self.sim.now() - timedelta(hours=1)).isoformat(), self.sim.now().isoformat()
        serials = [self.inverter.serial, self.other.serial]
        bodies: dict[str, Any] = {
            "Get Energy Flow Data": {"start_time": day, "end_time": day, "grouping": 0, "types": [0, 1, 2, 5]},
            "Modify Preset": {"enabled": True},
            "Read Setting": {"context": "conformance"},
            "Modify Setting": {"value": True, "context": "conformance"},
            "Modify Setting (Multiple)": {"inverter_serials": serials, "setting_id": 17, "value": "1"},
            "Read Setting (Multiple)": {"inverter_serials": serials, "setting_id": 17},
            "Send Notification": {
                "platforms": ["persist"],
                "title": "Something amazing has happened!",
                "body": "Here is some information about the amazing thing that has happened",
                "icon": "mdi-account-outline",
            },
            "Update Site Status": {"status": "vacant"},
            "Create Smart Device": {
                "serial_number": "SD-1",
                "alias": "Kettle",
                "product_name": "Plug",
                "manufacturer": "Acme",
                "other_data": [],
            },
            "Create Smart Device Data Point": {"time": end[:19].replace("T", " "), "power": 17},
            "Send Command": {"setup_version": 1},
        }
        params: dict[str, Any] = {}
        if endpoint.key == "Get Data Points [api:ev-charger:data]":
            params = {"start_time": start, "end_time": end}
        return params, bodies.get(endpoint.title)

    def token(self, endpoint: Endpoint) -> str:
        """A token whose account type satisfies the badge."""
        return "customer" if endpoint.only and endpoint.account_type == "customer" else "company"

    def loose(self, endpoint: Endpoint) -> frozenset[str]:
        """Paths whose type the documentation leaves open."""
        if endpoint.path.startswith("/multi-control"):
            # "The response value may be either the value sent to the device, a different value ... or one of
            # the below error codes" (Remote Control Codes): any scalar.
            return frozenset(f"$.{serial}.response" for serial in (self.inverter.serial, self.other.serial))
        return LOOSE

    def expected(self, endpoint: Endpoint) -> Any:
        """The documented example, with the example serials of multi-control replaced by the ones sent."""
        example = endpoint.example
        if endpoint.path.startswith("/multi-control"):
            template = example["SERIAL_1"]
            return {self.inverter.serial: template, self.other.serial: template}
        return example
