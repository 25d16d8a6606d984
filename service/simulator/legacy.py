"""The legacy portal API (``/GivManage/api``): a session cookie from ``login``, then form POSTs by serial.

Answers are flat JSON objects with a ``success`` flag, as the legacy documentation lists them. Calls without
a valid session answer ``{"success": false, "msg": "not login"}`` with HTTP 200, like the old portal.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from service.simulator import telemetry
from service.simulator.fleet import Device, is_gateway_or_ems
from service.simulator.web import Request, Response, Router

if TYPE_CHECKING:
    from service.simulator.core import Simulator

COOKIE = "JSESSIONID"


def _energy_text(kwh: float) -> str:
    if kwh >= 1000:
        return f"{kwh / 1000:.2f} MWh"
    return f"{kwh:.1f} kWh"


class LegacyApi:
    """Handlers of the legacy portal API."""

    def __init__(self, sim: Simulator) -> None:
        """Bind to a simulator."""
        self.sim = sim

    def routes(self, router: Router, prefix: str = "/GivManage/api") -> None:
        """Register the legacy endpoints."""
        router.add("POST", f"{prefix}/login", self.login)
        router.add("POST", f"{prefix}/plant/getPlantList", self.plant_list)
        router.add("POST", f"{prefix}/inverter/getInverterInfo", self.inverter_info)
        router.add("POST", f"{prefix}/inverter/getInverterRuntime", self.inverter_runtime)
        router.add("POST", f"{prefix}/inverter/getInverterEnergy", self.inverter_energy)
        router.add("POST", f"{prefix}/pcs/batCell/getBatCellData", self.battery_cells)

    async def login(self, request: Request) -> Response:
        """POST /login?account=&password=: sets the session cookie."""
        form = request.form()
        account = self.sim.fleet.accounts_by_username.get(form.get("account", ""))
        if account is None or form.get("password") != account.password:
            return Response(200, {"success": False, "msg": "account or password error"})
        session = hashlib.sha256(f"{account.id}:{len(self.sim.legacy_sessions)}:{account.password}".encode())
        value = session.hexdigest()[:32].upper()
        self.sim.legacy_sessions[value] = account.id
        return Response(200, {"success": True, "msg": "login success"}, {"Set-Cookie": f"{COOKIE}={value}; Path=/"})

    def _session(self, request: Request) -> int | None:
        value = request.cookie(COOKIE)
        return self.sim.legacy_sessions.get(value) if value else None

    def _device(self, request: Request) -> tuple[Device | None, Response | None]:
        account_id = self._session(request)
        if account_id is None:
            return None, Response(200, {"success": False, "msg": "not login"})
        serial = request.form().get("serialNum", "")
        device = self.sim.fleet.visible_device(account_id, serial)
        if device is None:
            return None, Response(200, {"success": False, "msg": "no such inverter"})
        return device, None

    async def plant_list(self, request: Request) -> Response:
        """POST plant/getPlantList: the sites of the session's account."""
        account_id = self._session(request)
        if account_id is None:
            return Response(200, {"success": False, "msg": "not login"})
        fleet = self.sim.fleet
        owners = set(fleet.customers_of(account_id))
        rows = []
        for site in fleet.sites.values():
            if site.account_id not in owners:
                continue
            devices = [d for d in fleet.devices_of(site.account_id) if d.site_id == site.id]
            rows.append({
                "plantId": site.id, "plantName": site.name, "country": site.country, "timezone": site.tz_timezone,
                "createDate": site.date_created, "inverters": [d.serial for d in devices],
            })  # fmt: skip
        return Response(200, {"success": True, "total": len(rows), "rows": rows})

    async def inverter_info(self, request: Request) -> Response:
        """POST inverter/getInverterInfo."""
        device, refusal = self._device(request)
        if device is None:
            return refusal or Response(200, {"success": False})
        fleet = self.sim.fleet
        owner = fleet.accounts[device.owner_id]
        reading = telemetry.snapshot(device, self.sim.now(), self.sim.site_zone(device))
        capacity = sum(battery.capacity_design for battery in device.batteries())
        return Response(200, {
            "alias": device.serial, "batPercent": f"{reading.battery_percent:.2f}%",
            "batteryType": "Lithium battery" if device.model.has_battery else "",
            "commissionDate": device.commission_date.date().isoformat(), "company": "", "companyAddress": ",",
            "companyPostcode": "", "datalogSn": device.dongle_serial,
            "deviceType": "STORAGE" if device.model.has_battery else "GATEWAY",
            "endUser": owner.username, "endUserAddress": owner.address, "endUserPostcode": owner.postcode.split()[0],
            "nominalCapacity": f"{capacity:.1f}", "nominalPower": device.model.power_w,
            "productModel": device.model.name, "serialNum": device.serial, "success": True,
        })  # fmt: skip

    async def inverter_runtime(self, request: Request) -> Response:
        """POST inverter/getInverterRuntime."""
        device, refusal = self._device(request)
        if device is None:
            return refusal or Response(200, {"success": False})
        now = self.sim.now()
        lost = device.status == "LOST"
        moment = device.last_updated if lost else now
        reading = telemetry.snapshot(device, moment, self.sim.site_zone(device))
        pv1, pv2 = reading.arrays[0][2], reading.arrays[1][2]
        grid = -reading.grid_power
        return Response(200, {
            "lost": lost, "pac": reading.inverter_power, "pacText": f"{float(reading.inverter_power):.1f} W",
            "pGrid": grid, "pGridText": f"{grid} W", "pLoad": reading.consumption,
            "pLoadText": f"{reading.consumption} W", "ppv1": pv1, "ppv1Text": f"{float(pv1):.1f} W",
            "ppv2": pv2, "ppv2Text": f"{float(pv2):.1f} W", "status": device.status,
            "statusText": device.status.replace("_", " ").title(), "success": True,
        })  # fmt: skip

    async def inverter_energy(self, request: Request) -> Response:
        """POST inverter/getInverterEnergy: type 0 day, 1 month, 2 year, 3 total (``dateText`` per type)."""
        device, refusal = self._device(request)
        if device is None:
            return refusal or Response(200, {"success": False})
        form = request.form()
        kind = form.get("type", "")
        text = form.get("dateText", "")
        energy = self._energy(device, kind, text)
        if energy is None:
            return Response(200, {"success": False, "msg": "parameter error"})
        return Response(200, {"energy": f"{energy:.2f}", "energyText": _energy_text(energy),
                              "serialNum": device.serial, "success": True})  # fmt: skip

    def _energy(self, device: Device, kind: str, text: str) -> float | None:
        now = self.sim.now()
        zone = self.sim.site_zone(device)
        daily = telemetry.total(device, now, zone).solar - telemetry.total(device, now - timedelta(days=1), zone).solar
        try:
            if kind == "0":
                day = date.fromisoformat(text)
                if day == now.astimezone(ZoneInfo(zone)).date():
                    return telemetry.today(device, now, zone).solar
                return daily if day < now.date() else 0.0
            if kind == "1":
                year, month = (int(part) for part in text.split("-"))
                return daily * 30 if (year, month) <= (now.year, now.month) else 0.0
            if kind == "2":
                return daily * 365 if int(text) <= now.year else 0.0
            if kind == "3":
                return telemetry.total(device, now, zone).solar
        except ValueError:
            return None
        return None

    async def battery_cells(self, request: Request) -> Response:
        """POST pcs/batCell/getBatCellData: per-cell voltages (mV) and temperatures per module."""
        device, refusal = self._device(request)
        if device is None:
            return refusal or Response(200, {"success": False})
        if is_gateway_or_ems(device):
            return Response(200, {"lost": False, "success": True, "modules": [], "maxVoltModule": 0,
                                  "minVoltModule": 0})  # fmt: skip
        now = self.sim.now()
        slot = int(now.timestamp()) // 300
        modules: list[dict[str, Any]] = []
        for position, battery in enumerate(device.batteries(), start=1):
            cells = [3350 + int(40 * telemetry.noise(device.seed, slot, 100 * position + cell)) for cell in range(16)]
            temps = [18 + 4 * telemetry.noise(device.seed, slot, 200 * position + t) for t in range(4)]
            module: dict[str, Any] = {f"cellVoltage{n}": value for n, value in enumerate(cells, start=1)}
            module.update({f"cellTempreture{n}Text": f"{value:.1f}" for n, value in enumerate(temps, start=1)})
            module.update({
                "charging": 1, "discharging": 1, "hasBmsCellModuleInfo": True,
                "maxVoltItem": cells.index(max(cells)) + 1, "maxVoltDiffValue": max(cells) - min(cells),
                "minVoltItem": cells.index(min(cells)) + 1,
                "moduleSoc": telemetry.snapshot(device, now, self.sim.site_zone(device)).battery_percent,
                "moduleVoltage": round(sum(cells) / 100), "module": battery.module_number,
                "moduleTempretureText": f"{max(temps) + 10:.1f}",
            })  # fmt: skip
            modules.append(module)
        highs = [max(m[f"cellVoltage{n}"] for n in range(1, 17)) for m in modules]
        lows = [min(m[f"cellVoltage{n}"] for n in range(1, 17)) for m in modules]
        return Response(200, {
            "lost": device.status == "LOST", "success": True, "modules": modules,
            "maxVoltModule": highs.index(max(highs)) + 1 if modules else 0,
            "minVoltModule": lows.index(min(lows)) + 1 if modules else 0,
        })  # fmt: skip
