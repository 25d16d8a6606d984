"""The v1 cloud API: every documented endpoint, its badges (scopes, account type, approval, custom limit)."""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from service.simulator import render, telemetry
from service.simulator.catalogue import PRESET_BY_ID, PRESETS, Kind, Preset, RuleError, Setting, coerce
from service.simulator.fleet import Account, AccountType, Device, EvCharger, SmartDevice, is_gateway_or_ems
from service.simulator.records import CONTROL_MESSAGES, ControlCall, DeviceAnswer, Token
from service.simulator.web import HttpError, Request, Response, Router, invalid, not_found

if TYPE_CHECKING:
    from service.simulator.core import Simulator

ANY = AccountType.CUSTOMER
Owned = TypeVar("Owned", EvCharger, SmartDevice)
"""Things a customer account owns (``owner_id``)."""


@dataclass(frozen=True, slots=True)
class Spec:
    """The badges of an endpoint.

    Attributes:
        scopes: Scopes the token needs (all of them).
        min_type: Lowest account type allowed (``engineer+`` -> ENGINEER).
        only: The account must be exactly ``min_type`` (``customer only``).
        approved: ``approved users only``.
        bucket: Name of a custom rate limit (``None``: the global one).
    """

    scopes: tuple[str, ...]
    min_type: AccountType = ANY
    only: bool = False
    approved: bool = False
    bucket: str | None = None


@dataclass(frozen=True, slots=True)
class Ctx:
    """Who is calling and when."""

    token: Token
    account: Account
    now: datetime


def data(payload: Any, status: int = 200) -> Response:
    """A ``{"data": ...}`` response."""
    return Response(status, {"data": payload})


# ---- parameter parsing ---------------------------------------------------------------------------------------


def _int_field(raw: object, name: str, errors: dict[str, list[str]], minimum: int | None = None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        number = int(str(raw)) if not isinstance(raw, bool) else None
    except ValueError:
        number = None
    if number is None:
        errors.setdefault(name, []).append(f"The {name} must be an integer.")
        return None
    if minimum is not None and number < minimum:
        errors.setdefault(name, []).append(f"The {name} must be at least {minimum}.")
        return None
    return number


def _date(raw: object, name: str, errors: dict[str, list[str]], *, required: bool = False) -> datetime | None:
    if raw is None or raw == "":
        if required:
            errors.setdefault(name, []).append(f"The {name.replace('_', ' ')} field is required.")
        return None
    text = str(raw)
    for pattern in ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            parsed = datetime.strptime(text, pattern)  # noqa: DTZ007 - naive forms are made UTC below
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    errors.setdefault(name, []).append(f"The {name.replace('_', ' ')} is not a valid date.")
    return None


def _bool_arg(raw: object) -> bool | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        return raw
    return str(raw).lower() in ("1", "true")


class Pager:
    """Laravel-style pagination (``page``/``pageSize`` in, ``links``/``meta`` out)."""

    def __init__(self, sim: Simulator) -> None:
        """Bind to the simulator's configuration."""
        self._config = sim.config

    def params(self, request: Request) -> tuple[int, int]:
        """Validated ``(page, page_size)``; 422 on bad values; the size is capped silently if configured."""
        errors: dict[str, list[str]] = {}
        page = _int_field(request.arg("page"), "page", errors, minimum=1) or 1
        size = _int_field(request.arg("pageSize"), "pageSize", errors, minimum=1) or self._config.default_page_size
        if errors:
            raise invalid(errors)
        if self._config.max_page_size is not None:
            size = min(size, self._config.max_page_size)
        return page, size

    def respond(self, request: Request, total: int, fetch: Callable[[int, int], Sequence[Any]]) -> Response:
        """A paginated response: ``fetch(offset, limit)`` returns the rendered items of the page."""
        page, size = self.params(request)
        last_page = max(1, -(-total // size))
        offset = (page - 1) * size
        items = list(fetch(offset, size)) if offset < total else []
        path = request.url
        kept = [(key, value) for key, values in request.query.items() if key != "page" for value in values]

        def link(number: int) -> str:
            query = "&".join(f"{key}={value}" for key, value in kept)
            return f"{path}?{query + '&' if query else ''}page={number}"

        return Response(
            200,
            {
                "data": items,
                "links": {
                    "first": link(1),
                    "last": link(last_page),
                    "prev": link(page - 1) if page > 1 else None,
                    "next": link(page + 1) if page < last_page else None,
                },
                "meta": {
                    "current_page": page,
                    "from": offset + 1 if items else None,
                    "last_page": last_page,
                    "path": path,
                    "per_page": size,
                    "to": offset + len(items) if items else None,
                    "total": total,
                },
            },
        )

    def of(self, request: Request, items: Sequence[Any], render_item: Callable[[Any], Any]) -> Response:
        """Paginate an in-memory sequence."""
        return self.respond(
            request, len(items), lambda offset, limit: [render_item(item) for item in items[offset : offset + limit]]
        )


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
_PHONE = re.compile(r"(\+?\d[\d\s()-]{8,}\d)")
_URL = re.compile(r"(https?://|www\.|\b[\w-]+\.(com|co\.uk|net|org|io|uk|info|biz)\b)", re.IGNORECASE)

EV_COMMANDS = (
    "start-charge", "stop-charge", "adjust-charge-power-limit", "set-plug-and-go", "set-session-energy-limit",
    "set-schedule", "unlock-connector", "delete-charging-profile", "change-mode", "restart-charger",
    "change-randomised-delay-duration", "add-id-tags", "delete-id-tags", "rename-id-tag", "installation-mode",
    "setup-version", "set-active-schedule", "set-max-import-capacity", "enable-front-panel-led",
    "configure-inverter-control", "perform-factory-reset", "configuration-mode", "enable-local-control",
)  # fmt: skip


class CloudApi:
    """Handlers of ``/v1``; :meth:`routes` registers them with their badges."""

    def __init__(self, sim: Simulator) -> None:
        """Bind to a simulator."""
        self.sim = sim
        self.pager = Pager(sim)

    def routes(self, router: Router, prefix: str = "/v1") -> None:
        """Register every v1 endpoint."""
        inv_read, inv_data, control = ("api:inverter:read",), ("api:inverter:data",), ("api:inverter:control",)
        table: list[tuple[str, str, Callable[..., Any], Spec]] = [
            ("GET", "/account", self.account_self, Spec(("api:account:read",))),
            ("GET", "/account/search/{username}", self.account_search,
             Spec(("api:account:read",), AccountType.ENGINEER)),
            ("GET", "/account/{account}/devices", self.account_devices,
             Spec(("api:inverter:list", "api:account:read"), AccountType.ENGINEER)),
            ("GET", "/account/{account}", self.account_by_id, Spec(("api:account:read",), AccountType.ENGINEER)),
            ("GET", "/account-children", self.children_self, Spec(("api:account:list",), AccountType.ENGINEER)),
            ("GET", "/account-children/{account}", self.children_by_id,
             Spec(("api:account:read", "api:account:list"), AccountType.COMPANY)),
            ("GET", "/communication-device", self.devices, Spec(("api:inverter:list",))),
            ("GET", "/communication-device/{serial}", self.device, Spec(inv_read)),
            ("GET", "/ems/{serial}/system-data/latest", self.ems_latest, Spec(inv_read)),
            ("GET", "/ev-charger", self.ev_list, Spec(("api:ev-charger:list",), AccountType.CUSTOMER, only=True)),
            ("GET", "/ev-charger/{uuid}", self.ev_get, Spec(("api:ev-charger:read",))),
            ("GET", "/ev-charger/{uuid}/meter-data", self.ev_meter_data, Spec(("api:ev-charger:data",))),
            ("GET", "/ev-charger/{uuid}/commands", self.ev_commands, Spec(("api:ev-charger:control",))),
            ("GET", "/ev-charger/{uuid}/commands/{command}", self.ev_command_data,
             Spec(("api:ev-charger:control",))),
            ("POST", "/ev-charger/{uuid}/commands/{command}", self.ev_send_command,
             Spec(("api:ev-charger:control",))),
            ("GET", "/ev-charger/{uuid}/charging-sessions", self.ev_sessions, Spec(("api:ev-charger:data",))),
            ("POST", "/inverter/{serial}/energy-flows", self.energy_flows, Spec(inv_data)),
            ("GET", "/inverter/{serial}/presets", self.presets, Spec(control)),
            ("POST", "/inverter/{serial}/presets/{preset}", self.apply_preset, Spec(control)),
            ("GET", "/inverter/{serial}/settings", self.settings, Spec(control)),
            ("POST", "/inverter/{serial}/settings/{setting}/read", self.setting_read, Spec(control)),
            ("POST", "/inverter/{serial}/settings/{setting}/write", self.setting_write, Spec(control)),
            ("POST", "/multi-control/write", self.multi_write, Spec(control)),
            ("POST", "/multi-control/read", self.multi_read, Spec(control)),
            ("GET", "/inverter/{serial}/request-data", self.request_data, Spec(inv_read, approved=True)),
            ("GET", "/inverter/{serial}/system-data/latest", self.system_latest, Spec(inv_read)),
            ("GET", "/inverter/{serial}/meter-data/latest", self.meter_latest, Spec(inv_read)),
            ("GET", "/inverter/{serial}/events", self.events, Spec(inv_data)),
            ("GET", "/inverter/{serial}/data-points/{date}", self.data_points, Spec(inv_data)),
            ("POST", "/notification/send", self.notify, Spec(("api:notification:send",), bucket="notification")),
            ("GET", "/site", self.sites, Spec(("api:site:list",))),
            ("GET", "/site/{site}", self.site, Spec(("api:site:read",))),
            ("GET", "/site/{site}/status", self.site_status, Spec(("api:site:read",), approved=True)),
            ("POST", "/site/{site}/status", self.site_status_update, Spec(("api:site:update",), approved=True)),
            ("GET", "/smart-device", self.smart_list, Spec(("api:smart-device:list",))),
            ("POST", "/smart-device", self.smart_create, Spec(("api:smart-device:create",))),
            ("GET", "/smart-device/{uuid}", self.smart_get, Spec(("api:smart-device:read",))),
            ("GET", "/smart-device/{uuid}/data", self.smart_data, Spec(("api:smart-device:data",))),
            ("POST", "/smart-device/{uuid}/data", self.smart_data_create, Spec(("api:smart-device:data",))),
        ]  # fmt: skip
        for method, path, handler, spec in table:
            router.add(method, prefix + path, handler, spec)

    # ---- lookups ------------------------------------------------------------------------------------------

    def _visible_account(self, ctx: Ctx, key: str) -> Account:
        fleet = self.sim.fleet
        target = fleet.accounts.get(int(key)) if key.isdigit() else fleet.accounts_by_username.get(key)
        if target is None or not fleet.can_see_account(ctx.account.id, target.id):
            raise not_found()
        return target

    def _device(self, ctx: Ctx, serial: str) -> Device:
        device = self.sim.fleet.visible_device(ctx.account.id, serial)
        if device is None:
            raise not_found()
        return device

    def _setting(self, device: Device, raw: str) -> Setting:
        entry = device.setting_index.get(int(raw)) if raw.isdigit() else None
        if entry is None:
            raise HttpError(404, {"message": "Setting not found."})
        return entry

    def _render_device(self, device: Device, now: datetime) -> dict[str, Any]:
        last_updated, last_online = self.sim.last_seen(device, now)
        return render.communication_device(device, last_updated, last_online)

    # ---- account ------------------------------------------------------------------------------------------

    async def account_self(self, request: Request, ctx: Ctx) -> Response:
        """GET /account."""
        return data(render.account(ctx.account))

    async def account_by_id(self, request: Request, ctx: Ctx) -> Response:
        """GET /account/{id}."""
        key = request.params["account"]
        if not key.isdigit():
            raise not_found()
        return data(render.account(self._visible_account(ctx, key)))

    async def account_search(self, request: Request, ctx: Ctx) -> Response:
        """GET /account/search/{username}."""
        target = self.sim.fleet.accounts_by_username.get(request.params["username"])
        if target is None or not self.sim.fleet.can_see_account(ctx.account.id, target.id):
            raise not_found()
        return data(render.account(target))

    async def account_devices(self, request: Request, ctx: Ctx) -> Response:
        """GET /account/{id or username}/devices."""
        target = self._visible_account(ctx, request.params["account"])
        devices = self.sim.fleet.devices_of(target.id)
        return self.pager.of(request, devices, lambda device: self._render_device(device, ctx.now))

    async def children_self(self, request: Request, ctx: Ctx) -> Response:
        """GET /account-children."""
        return self._children(request, ctx.account.id)

    async def children_by_id(self, request: Request, ctx: Ctx) -> Response:
        """GET /account-children/{id}."""
        return self._children(request, self._visible_account(ctx, request.params["account"]).id)

    def _children(self, request: Request, account_id: int) -> Response:
        fleet = self.sim.fleet
        ids = fleet.subtree(account_id)
        return self.pager.of(request, ids, lambda key: render.account(fleet.accounts[key]))

    # ---- communication devices ----------------------------------------------------------------------------

    async def devices(self, request: Request, ctx: Ctx) -> Response:
        """GET /communication-device."""
        devices = self.sim.fleet.devices_of(ctx.account.id)
        return self.pager.of(request, devices, lambda device: self._render_device(device, ctx.now))

    async def device(self, request: Request, ctx: Ctx) -> Response:
        """GET /communication-device/{serial} (the dongle serial)."""
        device = self.sim.fleet.visible_device(ctx.account.id, request.params["serial"], dongle=True)
        if device is None:
            raise not_found()
        return data(self._render_device(device, ctx.now))

    # ---- inverter data ------------------------------------------------------------------------------------

    def _reading_time(self, device: Device, now: datetime) -> datetime:
        last_updated, _ = self.sim.last_seen(device, now)
        return last_updated

    async def system_latest(self, request: Request, ctx: Ctx) -> Response:
        """GET /inverter/{serial}/system-data/latest."""
        device = self._device(ctx, request.params["serial"])
        moment = self._reading_time(device, ctx.now)
        reading = telemetry.snapshot(device, moment, self.sim.site_zone(device))
        return data(render.system_data(device, moment, reading, device.status))

    async def meter_latest(self, request: Request, ctx: Ctx) -> Response:
        """GET /inverter/{serial}/meter-data/latest (Gateway/EMS sometimes answer a null ``today``/``total``)."""
        device = self._device(ctx, request.params["serial"])
        moment = self._reading_time(device, ctx.now)
        zone = self.sim.site_zone(device)
        today = telemetry.today(device, moment, zone)
        total = telemetry.total(device, moment, zone)
        odd = is_gateway_or_ems(device)
        slot = int(moment.timestamp()) // 300
        return data(
            {
                "time": render.iso(moment),
                "today": None if odd and slot % 2 == 0 else render.energy(today),
                "total": None if odd and slot % 2 == 1 else render.energy(total),
                "is_metered": bool(device.meters()),
            }
        )

    async def request_data(self, request: Request, ctx: Ctx) -> Response:
        """GET /inverter/{serial}/request-data (approved users only)."""
        device = self._device(ctx, request.params["serial"])
        await self.sim.device_latency()
        ok = device.status != "LOST" and not device.forced_offline
        return Response(200, {"success": ok})

    async def events(self, request: Request, ctx: Ctx) -> Response:
        """GET /inverter/{serial}/events (filters ``start``, ``end``, ``cleared`` from query or body)."""
        device = self._device(ctx, request.params["serial"])
        body = request.json() if request.body else {}
        source = body if isinstance(body, dict) else {}
        errors: dict[str, list[str]] = {}
        start = _date(request.arg("start") or source.get("start"), "start", errors)
        end = _date(request.arg("end") or source.get("end"), "end", errors)
        if errors:
            raise invalid(errors)
        raw_cleared = request.arg("cleared")
        cleared = _bool_arg(raw_cleared if raw_cleared not in (None, "") else source.get("cleared"))
        found = []
        for event in self.sim.behaviour.events.get(device.serial, []):
            if start is not None and event.start_time < start:
                continue
            if end is not None and event.start_time >= end + timedelta(days=1):
                continue
            if cleared is not None and (event.end_time is not None) != cleared:
                continue
            found.append(event)
        found.sort(key=lambda event: event.start_time, reverse=True)
        return self.pager.of(request, found, render.event)

    async def data_points(self, request: Request, ctx: Ctx) -> Response:
        """GET /inverter/{serial}/data-points/{date}: every 5 minutes of the inverter's local date so far."""
        device = self._device(ctx, request.params["serial"])
        try:
            day = date.fromisoformat(request.params["date"])
        except ValueError:
            raise invalid({"date": ["The date does not match the format Y-m-d."]}) from None
        zone = self.sim.site_zone(device)
        local_midnight = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)
        until = min(local_midnight + timedelta(days=1), ctx.now)
        if until <= device.commission_date:  # no data before the inverter existed
            until = local_midnight
        if device.status == "LOST":
            until = min(until, device.last_updated)
        count = max(0, -(-int((until - local_midnight).total_seconds()) // 300)) if until > local_midnight else 0
        latest = telemetry.floor_interval(ctx.now)
        metered = bool(device.meters())

        def fetch(offset: int, limit: int) -> list[dict[str, Any]]:
            points = []
            for number in range(offset, min(count, offset + limit)):
                moment = local_midnight + timedelta(minutes=5 * number)
                reading = telemetry.snapshot(device, moment, zone)
                status = device.status if moment >= latest else ("NORMAL" if reading.solar else "WAITING")
                points.append(
                    render.data_point(
                        moment, status, reading, telemetry.today(device, moment, zone),
                        telemetry.total(device, moment, zone), metered,
                    )
                )  # fmt: skip
            return points

        return self.pager.respond(request, count, fetch)

    async def energy_flows(self, request: Request, ctx: Ctx) -> Response:
        """POST /inverter/{serial}/energy-flows."""
        device = self._device(ctx, request.params["serial"])
        body = request.json()
        if not isinstance(body, dict):
            raise invalid({"start_time": ["The start time field is required."]})
        errors: dict[str, list[str]] = {}
        start = _date(body.get("start_time"), "start_time", errors, required=True)
        end = _date(body.get("end_time"), "end_time", errors, required=True)
        grouping = body.get("grouping")
        if grouping is None:
            errors["grouping"] = ["The grouping field is required."]
        elif not isinstance(grouping, int) or isinstance(grouping, bool) or not 0 <= grouping <= 4:
            errors["grouping"] = ["The selected grouping is invalid."]
        types = body.get("types", list(range(7)))
        if not isinstance(types, list) or any(not isinstance(t, int) or not 0 <= t <= 6 for t in types):
            errors["types"] = ["The selected types is invalid."]
        if errors or start is None or end is None or not isinstance(grouping, int):
            raise invalid(errors)
        if isinstance(body.get("end_time"), str) and len(body["end_time"]) == 10:
            end += timedelta(days=1)
        if end <= start:
            raise invalid({"end_time": ["The end time must be a date after or equal to start time."]})
        zone = self.sim.site_zone(device)
        local = ZoneInfo(zone)
        # Dates and times in the body are the inverter's local time.
        start, end = start.replace(tzinfo=local), end.replace(tzinfo=local)
        intervals = _intervals(start, end, grouping)
        if len(intervals) > 20_000:
            raise invalid({"end_time": ["The requested range is too large for this grouping."]})
        result = []
        for lower, upper in intervals:
            flows = telemetry.energy_between(device, lower, upper, zone)
            result.append(
                {
                    "start_time": lower.strftime("%Y-%m-%d %H:%M"),
                    "end_time": upper.strftime("%Y-%m-%d %H:%M"),
                    "data": {str(key): flows[key] for key in sorted(set(types))},
                }
            )
        return data(result)

    async def ems_latest(self, request: Request, ctx: Ctx) -> Response:
        """GET /ems/{serial}/system-data/latest (EMS devices only)."""
        device = self._device(ctx, request.params["serial"])
        if device.model.kind is not Kind.EMS:
            raise not_found()
        moment = self._reading_time(device, ctx.now)
        siblings = [d for d in self.sim.fleet.devices_of(device.owner_id) if d is not device][:4]
        zone = self.sim.site_zone(device)
        inverters: list[dict[str, Any]] = []
        for number in range(1, 5):
            if number <= len(siblings):
                sibling = siblings[number - 1]
                reading = telemetry.snapshot(sibling, moment, zone)
                inverters.append({
                    "active_power": reading.inverter_power, "number": number, "serial_number": sibling.serial,
                    "soc": reading.battery_percent, "status": 2 if sibling.status != "LOST" else 7,
                    "temperature": reading.inverter_temperature,
                })  # fmt: skip
            else:
                inverters.append({"active_power": None, "number": number, "serial_number": None, "soc": None,
                                  "status": 0, "temperature": None})  # fmt: skip
        meters = [
            {"active_power": None if number > 1 else 0, "number": number, "status": 1 if number == 1 else 0,
             "type": 0}
            for number in range(1, 9)
        ]  # fmt: skip
        total_power = sum(int(item["active_power"] or 0) for item in inverters)
        return data({
            "battery_power": 0, "battery_wh_remaining": 0, "calculated_load_power": total_power, "car_power": 0,
            "error_code": 0, "grid_power": 0, "measured_load_power": total_power,
            "status": 1 if device.status != "LOST" else 3, "time": render.iso(moment),
            "total_generation": total_power, "warning_code": 0, "inverters": inverters, "meters": meters,
        })  # fmt: skip

    # ---- control ------------------------------------------------------------------------------------------

    async def settings(self, request: Request, ctx: Ctx) -> Response:
        """GET /inverter/{serial}/settings."""
        device = self._device(ctx, request.params["serial"])
        return data([render.setting(entry) for entry in device.catalogue])

    def _call(self, ctx: Ctx, action: str, device: Device, setting: Setting | None, **fields: Any) -> ControlCall:
        return ControlCall(
            time=ctx.now, token=ctx.token.name, account_id=ctx.account.id, action=action, serial=device.serial,
            setting_id=setting.id if setting else None, **fields,
        )  # fmt: skip

    async def setting_read(self, request: Request, ctx: Ctx) -> Response:
        """POST /inverter/{serial}/settings/{id}/read."""
        device = self._device(ctx, request.params["serial"])
        entry = self._setting(device, request.params["setting"])
        context = _context(request)
        await self.sim.device_latency()
        answer = self.sim.device_read(device, entry)
        response: dict[str, Any]
        if answer.code is not None:
            response = {"value": answer.code, "success": False, "message": CONTROL_MESSAGES[answer.code]}
        else:
            response = {"value": render.value(device, entry, answer.value)}
        self.sim.log_control(self._call(
            ctx, "read", device, entry, value=None, outcome=answer.code, response=response["value"],
            applied=False, stored=device.true_value(entry), context=context,
        ))  # fmt: skip
        return data(response)

    async def setting_write(self, request: Request, ctx: Ctx) -> Response:
        """POST /inverter/{serial}/settings/{id}/write."""
        device = self._device(ctx, request.params["serial"])
        entry = self._setting(device, request.params["setting"])
        body = request.json()
        raw = body.get("value") if isinstance(body, dict) else None
        context = _context(request)
        try:
            value = coerce(entry, raw)
        except RuleError as error:
            raise invalid({"value": [str(error)]}) from None
        await self.sim.device_latency()
        answer = self.sim.device_write(device, entry, value)
        if answer.code is not None:
            response = {"value": answer.code, "success": False, "message": CONTROL_MESSAGES[answer.code]}
        else:
            response = {"value": render.value(device, entry, answer.value), "success": True,
                        "message": "Written Successfully"}  # fmt: skip
        self.sim.log_control(self._call(
            ctx, "write", device, entry, value=raw, outcome=answer.code, response=response["value"],
            applied=answer.applied, stored=device.true_value(entry), context=context,
        ))  # fmt: skip
        return data(response)

    def _multi_body(self, request: Request, *, write: bool) -> tuple[list[str], int, Any]:
        body = request.json()
        if not isinstance(body, dict):
            body = {}
        errors: dict[str, list[str]] = {}
        serials = body.get("inverter_serials")
        if serials is None:
            errors["inverter_serials"] = ["The inverter serials field is required."]
        elif not isinstance(serials, list) or not all(isinstance(serial, str) for serial in serials):
            errors["inverter_serials"] = ["The inverter serials must be an array."]
        elif len(serials) > 1000:
            errors["inverter_serials"] = ["The inverter serials must not have more than 1000 items."]
        elif not serials:
            errors["inverter_serials"] = ["The inverter serials field is required."]
        setting_id = _int_field(body.get("setting_id"), "setting_id", errors)
        if setting_id is None and "setting_id" not in errors:
            errors["setting_id"] = ["The setting id field is required."]
        if write and body.get("value") is None:
            errors["value"] = ["The value field is required."]
        if errors or setting_id is None or not isinstance(serials, list):
            raise invalid(errors)
        return serials, setting_id, body.get("value")

    def _multi_devices(self, ctx: Ctx, serials: list[str], result: dict[str, dict[str, Any]]
                       ) -> Iterator[tuple[str, Device]]:
        """Each serial once with its device; a serial the caller cannot see answers -3 in ``result``."""
        for serial in dict.fromkeys(serials):
            device = self.sim.fleet.visible_device(ctx.account.id, serial)
            if device is None:
                result[serial] = {"response": -3}
            else:
                yield serial, device

    async def multi_write(self, request: Request, ctx: Ctx) -> Response:
        """POST /multi-control/write: per-serial value or remote-control code, no ``data`` envelope."""
        return await self._multi_control(request, ctx, write=True)

    async def multi_read(self, request: Request, ctx: Ctx) -> Response:
        """POST /multi-control/read."""
        return await self._multi_control(request, ctx, write=False)

    async def _multi_control(self, request: Request, ctx: Ctx, *, write: bool) -> Response:
        """One setting read or written on each serial: ``{serial: {"response": value or code}}``."""
        serials, setting_id, raw = self._multi_body(request, write=write)
        await self.sim.device_latency()
        result: dict[str, dict[str, Any]] = {}
        for serial, device in self._multi_devices(ctx, serials, result):
            entry = device.setting_index.get(setting_id)
            if write:
                shown = self._multi_write_one(ctx, device, entry, raw)
            else:
                shown = self._multi_read_one(ctx, device, entry)
            result[serial] = {"response": shown}
        return Response(200, result)

    def _multi_write_one(self, ctx: Ctx, device: Device, entry: Setting | None, raw: Any) -> Any:
        """Write one device; a setting it lacks or a value its rules refuse answers -4 (and is logged)."""
        try:
            if entry is None:
                raise RuleError("unknown setting")
            value = coerce(entry, raw)
        except RuleError:
            self.sim.log_control(self._call(
                ctx, "multi-write", device, entry, value=raw, outcome=-4, response=-4, applied=False,
                stored=device.true_value(entry) if entry else None,
            ))  # fmt: skip
            return -4
        return self._log_multi(ctx, "multi-write", device, entry, raw, self.sim.device_write(device, entry, value))

    def _multi_read_one(self, ctx: Ctx, device: Device, entry: Setting | None) -> Any:
        """Read one device; a setting it lacks answers -4 (not logged: nothing reached the device)."""
        if entry is None:
            return -4
        return self._log_multi(ctx, "multi-read", device, entry, None, self.sim.device_read(device, entry))

    def _log_multi(self, ctx: Ctx, action: str, device: Device, entry: Setting, raw: Any, answer: DeviceAnswer) -> Any:
        """Log a multi-control call that reached the device; the response shown is its code or rendered value."""
        shown = answer.code if answer.code is not None else render.value(device, entry, answer.value)
        self.sim.log_control(self._call(
            ctx, action, device, entry, value=raw, outcome=answer.code, response=shown, applied=answer.applied,
            stored=device.true_value(entry),
        ))  # fmt: skip
        return shown

    def _presets_of(self, device: Device) -> list[Preset]:
        index = device.setting_index
        return [p for p in PRESETS if all(param.setting_id in index for param in p.parameters)]

    async def presets(self, request: Request, ctx: Ctx) -> Response:
        """GET /inverter/{serial}/presets."""
        device = self._device(ctx, request.params["serial"])
        return data([
            {
                "id": preset.id, "name": preset.name, "description": preset.description,
                "parameters": {
                    param.name: {"description": param.description, "validation": list(param.rules)}
                    for param in preset.parameters
                },
            }
            for preset in self._presets_of(device)
        ])  # fmt: skip

    async def apply_preset(self, request: Request, ctx: Ctx) -> Response:
        """POST /inverter/{serial}/presets/{preset}: validated per the preset's parameters, then written."""
        device = self._device(ctx, request.params["serial"])
        key = request.params["preset"]
        preset = PRESET_BY_ID.get(int(key)) if key.isdigit() else None
        if preset is None or preset not in self._presets_of(device):
            raise not_found()
        body = request.json()
        body = body if isinstance(body, dict) else {}
        writes, errors = _preset_writes(device, preset, body)
        if errors:
            raise invalid(errors)
        await self.sim.device_latency()
        code: int | None = None
        for entry, value in writes:
            answer = self.sim.device_write(device, entry, value)
            self.sim.log_control(self._call(
                ctx, "preset", device, entry, value=value, outcome=answer.code,
                response=answer.code if answer.code is not None else answer.value, applied=answer.applied,
                stored=device.true_value(entry), preset_id=preset.id,
            ))  # fmt: skip
            if answer.code is not None:
                code = answer.code
                break
        if code is not None:
            return data({"success": False, "message": CONTROL_MESSAGES[code], "value": code})
        return data({"success": True, "message": "Written Successfully"})

    # ---- notifications, sites -----------------------------------------------------------------------------

    async def notify(self, request: Request, ctx: Ctx) -> Response:
        """POST /notification/send (custom limit 10 per 60 minutes)."""
        body = request.json()
        body = body if isinstance(body, dict) else {}
        errors: dict[str, list[str]] = {}
        platforms = body.get("platforms")
        if not isinstance(platforms, list) or not platforms:
            errors["platforms"] = ["The platforms field is required."]
        elif any(platform not in ("persist", "push") for platform in platforms):
            errors["platforms"] = ["The selected platforms is invalid."]
        for name in ("title", "body"):
            text = body.get(name)
            if not isinstance(text, str) or not text.strip():
                errors[name] = [f"The {name} field is required."]
            elif _EMAIL.search(text) or _PHONE.search(text) or _URL.search(text):
                errors[name] = [f"The {name} must not contain email addresses, telephone numbers or URLs."]
        if errors:
            raise invalid(errors)
        self.sim.notifications.append({
            "time": ctx.now, "account_id": ctx.account.id, "token": ctx.token.name, "platforms": platforms,
            "title": body["title"], "body": body["body"], "icon": body.get("icon"),
        })  # fmt: skip
        return Response(200, {"success": True})

    def _visible_sites(self, ctx: Ctx) -> list[int]:
        return self.sim.fleet.sites_of(ctx.account.id)

    def _site_of(self, ctx: Ctx, raw: str) -> Any:
        fleet = self.sim.fleet
        site = fleet.sites.get(int(raw)) if raw.isdigit() else None
        if site is None or not fleet.can_see_owner(ctx.account.id, site.account_id):
            raise not_found()
        return site

    async def sites(self, request: Request, ctx: Ctx) -> Response:
        """GET /site."""
        fleet = self.sim.fleet
        ids = self._visible_sites(ctx)
        return self.pager.of(
            request, ids, lambda key: render.site(fleet.sites[key], fleet.accounts[fleet.sites[key].account_id])
        )

    async def site(self, request: Request, ctx: Ctx) -> Response:
        """GET /site/{id}."""
        site = self._site_of(ctx, request.params["site"])
        return data(render.site(site, self.sim.fleet.accounts[site.account_id]))

    async def site_status(self, request: Request, ctx: Ctx) -> Response:
        """GET /site/{id}/status (approved users only)."""
        site = self._site_of(ctx, request.params["site"])
        return Response(200, {"status": site.status})

    async def site_status_update(self, request: Request, ctx: Ctx) -> Response:
        """POST /site/{id}/status; ``null`` deletes the status."""
        site = self._site_of(ctx, request.params["site"])
        body = request.json()
        if not isinstance(body, dict) or "status" not in body:
            raise invalid({"status": ["The status field must be present."]})
        status = body["status"]
        if status is not None and status not in ("vacant", "opted_in", "opted_out"):
            raise invalid({"status": ["The selected status is invalid."]})
        site.status = status
        return Response(200, {"success": True})

    # ---- EV chargers --------------------------------------------------------------------------------------

    def _owned(self, ctx: Ctx, things: Mapping[str, Owned], key: str) -> Owned:
        """The thing under ``key`` (EV charger, smart device) if the caller sees its owner; else 404."""
        thing = things.get(key)
        if thing is None or not self.sim.fleet.can_see_owner(ctx.account.id, thing.owner_id):
            raise not_found()
        return thing

    def _page_of_owned(
        self, request: Request, ctx: Ctx, things: Mapping[str, Owned], render_item: Callable[[Owned], Any]
    ) -> Response:
        """A page of the things owned by the customer accounts the caller sees."""
        owners = set(self.sim.fleet.customers_of(ctx.account.id))
        return self.pager.of(request, [thing for thing in things.values() if thing.owner_id in owners], render_item)

    def _charger(self, ctx: Ctx, key: str) -> EvCharger:
        return self._owned(ctx, self.sim.fleet.ev_chargers, key)

    async def ev_list(self, request: Request, ctx: Ctx) -> Response:
        """GET /ev-charger (customer accounts only)."""
        return self._page_of_owned(request, ctx, self.sim.fleet.ev_chargers, render.ev_charger)

    async def ev_get(self, request: Request, ctx: Ctx) -> Response:
        """GET /ev-charger/{uuid}."""
        return data(render.ev_charger(self._charger(ctx, request.params["uuid"])))

    async def ev_meter_data(self, request: Request, ctx: Ctx) -> Response:
        """GET /ev-charger/{uuid}/meter-data: one point per meter per minute."""
        charger = self._charger(ctx, request.params["uuid"])
        errors: dict[str, list[str]] = {}
        start = _date(request.arg("start_time"), "start_time", errors, required=True)
        end = _date(request.arg("end_time"), "end_time", errors, required=True)
        if errors or start is None or end is None:
            raise invalid(errors)
        measurands = [int(m) for m in request.args("measurands") if m.isdigit()] or [4, 11, 13, 21]
        meter_ids = [int(m) for m in request.args("meter_ids") if m.isdigit()] or [0]
        end = min(end, ctx.now)
        minutes = max(0, int((end - start).total_seconds()) // 60)
        total = minutes * len(meter_ids)
        units = {4: 0, 13: 4, 21: 11, 1: 10, 2: 10, 19: 15, 20: 12}

        def fetch(offset: int, limit: int) -> list[dict[str, Any]]:
            rows = []
            for position in range(offset, min(total, offset + limit)):
                minute, meter_index = divmod(position, len(meter_ids))
                moment = start + timedelta(minutes=minute)
                slot = int(moment.timestamp()) // 60
                charging = charger.status == "Charging"
                rows.append({
                    "meter_id": meter_ids[meter_index],
                    "timestamp": moment.strftime("%Y-%m-%d %H:%M:%S"),
                    "measurements": [
                        {"measurand": m, "value": _ev_value(m, charger.seed, slot, charging), "unit": units.get(m)}
                        for m in measurands
                    ],
                })  # fmt: skip
            return rows

        return self.pager.respond(request, total, fetch)

    async def ev_commands(self, request: Request, ctx: Ctx) -> Response:
        """GET /ev-charger/{uuid}/commands."""
        charger = self._charger(ctx, request.params["uuid"])
        supported = [
            command for number, command in enumerate(EV_COMMANDS) if (charger.seed >> number) % 5 or number < 9
        ]
        return data(supported)

    async def ev_command_data(self, request: Request, ctx: Ctx) -> Response:
        """GET /ev-charger/{uuid}/commands/{command}."""
        charger = self._charger(ctx, request.params["uuid"])
        command = request.params["command"]
        if command not in EV_COMMANDS:
            raise not_found()
        return data(_ev_command_data(charger, command))

    async def ev_send_command(self, request: Request, ctx: Ctx) -> Response:
        """POST /ev-charger/{uuid}/commands/{command}."""
        charger = self._charger(ctx, request.params["uuid"])
        command = request.params["command"]
        if command not in EV_COMMANDS:
            raise not_found()
        body = request.json()
        body = body if isinstance(body, dict) else {}
        # The body is validated first (422) on a copy: an offline charger never hears the command.
        _apply_ev_command(copy.copy(charger), command, body)
        await self.sim.device_latency()
        if not charger.online:
            return data({"code": -2, "success": False, "message": "Charger Offline"})
        _apply_ev_command(charger, command, body)
        return data({"code": 0, "success": True, "message": "Accepted"})

    async def ev_sessions(self, request: Request, ctx: Ctx) -> Response:
        """GET /ev-charger/{uuid}/charging-sessions."""
        charger = self._charger(ctx, request.params["uuid"])
        sessions = []
        meter = 500.0 + charger.seed % 1000
        for number in range(12):
            started = ctx.now - timedelta(days=12 - number, hours=-(charger.seed % 6))
            energy = round(5 + telemetry.noise(charger.seed, number, 9) * 30, 1)
            open_session = number == 11 and charger.status == "Charging"
            sessions.append({
                "started_by": "PLUG_AND_GO" if charger.plug_and_go else f"{charger.seed % 99999:05d}",
                "meter_start": round(meter, 1), "started_at": render.iso(started),
                "stopped_by": None if open_session else "PLUG_AND_GO",
                "meter_stop": None if open_session else round(meter + energy, 1),
                "stopped_at": None if open_session else render.iso(started + timedelta(hours=3)),
                "stop_reason": None if open_session else "EVDisconnected",
            })  # fmt: skip
            meter += energy
        sessions.reverse()
        return self.pager.of(request, sessions, lambda session: session)

    # ---- smart devices ------------------------------------------------------------------------------------

    def _smart(self, ctx: Ctx, key: str) -> SmartDevice:
        return self._owned(ctx, self.sim.fleet.smart_devices, key)

    async def smart_list(self, request: Request, ctx: Ctx) -> Response:
        """GET /smart-device."""
        return self._page_of_owned(request, ctx, self.sim.fleet.smart_devices, render.smart_device)

    async def smart_create(self, request: Request, ctx: Ctx) -> Response:
        """POST /smart-device (answers like the docs: ``data`` is a list)."""
        body = request.json()
        body = body if isinstance(body, dict) else {}
        errors = {
            name: [f"The {name.replace('_', ' ')} field is required."]
            for name in ("serial_number", "alias", "product_name", "manufacturer")
            if not isinstance(body.get(name), str) or not body[name]
        }
        if errors:
            raise invalid(errors)
        number = len(self.sim.fleet.smart_devices) + 1
        record = SmartDevice(str(uuid.uuid5(uuid.NAMESPACE_URL, f"sim:{ctx.account.id}:{number}")), ctx.account.id,
                        body["alias"])  # fmt: skip
        record.hardware_id = body["serial_number"]
        self.sim.fleet.smart_devices[record.uuid] = record
        return data([render.smart_device(record)])

    async def smart_get(self, request: Request, ctx: Ctx) -> Response:
        """GET /smart-device/{uuid} (answers like the docs: ``data`` is a list)."""
        return data([render.smart_device(self._smart(ctx, request.params["uuid"]))])

    async def smart_data(self, request: Request, ctx: Ctx) -> Response:
        """GET /smart-device/{uuid}/data."""
        device = self._smart(ctx, request.params["uuid"])
        points = sorted(device.points, key=lambda point: point[0], reverse=True)
        return self.pager.of(request, points, lambda point: {"time": render.iso(point[0]), "power": point[1]})

    async def smart_data_create(self, request: Request, ctx: Ctx) -> Response:
        """POST /smart-device/{uuid}/data."""
        device = self._smart(ctx, request.params["uuid"])
        body = request.json()
        body = body if isinstance(body, dict) else {}
        errors: dict[str, list[str]] = {}
        moment = _date(body.get("time"), "time", errors, required=True)
        power = body.get("power")
        if not isinstance(power, int | float) or isinstance(power, bool):
            errors["power"] = ["The power must be a number."]
        if errors or moment is None or not isinstance(power, int | float):
            raise invalid(errors)
        device.points.append((moment, int(power)))
        return data([{"time": render.iso(moment), "power": int(power)}])


# ---- helpers -------------------------------------------------------------------------------------------------


def _context(request: Request) -> str | None:
    body = request.json()
    context = body.get("context") if isinstance(body, dict) else None
    return context if isinstance(context, str) else None


def _preset_writes(
    device: Device, preset: Preset, body: dict[str, Any]
) -> tuple[list[tuple[Setting, bool | int | str]], dict[str, list[str]]]:
    writes: list[tuple[Setting, bool | int | str]] = []
    errors: dict[str, list[str]] = {}
    for param in preset.parameters:
        entry = device.setting_index[param.setting_id]
        raw = body.get(param.name)
        if raw is None:
            if "required" in param.rules:
                errors[param.name] = [f"The {param.name.replace('_', ' ')} field is required."]
            continue
        try:
            writes.append((entry, coerce(entry, raw)))
        except RuleError as error:
            errors[param.name] = [str(error)]
    return writes, errors


def _intervals(start: datetime, end: datetime, grouping: int) -> list[tuple[datetime, datetime]]:
    if grouping == 4:
        return [(start, end)]
    intervals: list[tuple[datetime, datetime]] = []
    current = start
    while current < end and len(intervals) <= 20_000:
        if grouping == 0:
            upper = current + timedelta(minutes=30)
        elif grouping == 1:
            upper = current + timedelta(days=1)
        elif grouping == 2:
            upper = (current.replace(day=1) + timedelta(days=32)).replace(day=1)
        else:
            upper = current.replace(year=current.year + 1, month=1, day=1)
        intervals.append((current, min(upper, end)))
        current = upper
    return intervals


def _ev_value(measurand: int, seed: int, slot: int, charging: bool) -> float:
    jitter = telemetry.noise(seed, slot, measurand)
    if measurand == 11:
        return round(49.9 + 0.2 * jitter, 2)
    if measurand == 21:
        return round(230 + 10 * jitter, 1)
    if measurand == 13:
        return round(7000 + 300 * jitter) if charging else 0
    if measurand == 4:
        return round(1000 + slot % 100000 * 0.05, 1)
    return round(jitter * 10, 2)


def _ev_command_data(charger: EvCharger, command: str) -> Any:
    if command == "change-mode":
        return {"active": charger.mode, "available": ["Eco", "SuperEco", "Boost"]}
    if command == "adjust-charge-power-limit":
        return {"min": 6, "max": 32, "value": charger.power_limit, "unit": "A"}
    if command == "set-plug-and-go":
        return charger.plug_and_go
    if command == "set-session-energy-limit":
        return {"min": 0.1, "max": 250, "value": charger.session_energy_limit, "unit": "kWh"}
    if command == "configuration-mode":
        return {"value": charger.configuration_mode}
    if command == "set-schedule":
        return {"schedules": []}
    if command == "add-id-tags":
        return {"id_tags": [], "maximum_id_tags": 10}
    if command == "set-active-schedule":
        return {"schedule_id": None}
    if command == "configure-inverter-control":
        return {"inverter_battery_export_split": 0, "max_battery_discharge_power_to_evc": 0, "mode": "SuperEco"}
    if command == "installation-mode":
        return "ct_meter"
    if command in ("change-randomised-delay-duration", "delete-id-tags", "rename-id-tag"):
        return None
    return []


def _require_number(body: dict[str, Any], name: str, low: float, high: float, optional: bool = False) -> float | None:
    raw = body.get(name)
    if raw is None and optional:
        return None
    if not isinstance(raw, int | float) or isinstance(raw, bool) or not low <= raw <= high:
        raise invalid({name: [f"The {name.replace('_', ' ')} must be between {low:g} and {high:g}."]})
    return float(raw)


def _ev_power_limit(charger: EvCharger, body: dict[str, Any]) -> None:
    charger.power_limit = int(_require_number(body, "limit", 6, 32) or 32)


def _ev_plug_and_go(charger: EvCharger, body: dict[str, Any]) -> None:
    if not isinstance(body.get("enabled"), bool):
        raise invalid({"enabled": ["The enabled field must be true or false."]})
    charger.plug_and_go = body["enabled"]


def _ev_energy_limit(charger: EvCharger, body: dict[str, Any]) -> None:
    charger.session_energy_limit = _require_number(body, "limit", 0.1, 250, optional=True)


def _ev_mode(charger: EvCharger, body: dict[str, Any]) -> None:
    if body.get("mode") not in ("SuperEco", "Eco", "Boost", "ModbusSlave"):
        raise invalid({"mode": ["The selected mode is invalid."]})
    charger.mode = body["mode"]


def _ev_configuration(charger: EvCharger, body: dict[str, Any]) -> None:
    if body.get("configuration_mode") not in ("A", "B", "C", "D", "E"):
        raise invalid({"configuration_mode": ["The selected configuration mode is invalid."]})
    charger.configuration_mode = body["configuration_mode"]


def _ev_start(charger: EvCharger, body: dict[str, Any]) -> None:
    charger.status = "Charging"


def _ev_stop(charger: EvCharger, body: dict[str, Any]) -> None:
    charger.status = "Finishing"


def _ev_delay(charger: EvCharger, body: dict[str, Any]) -> None:
    _require_number(body, "duration", 600, 1800)


def _ev_import(charger: EvCharger, body: dict[str, Any]) -> None:
    charger.max_import = int(_require_number(body, "value", 40, 100, optional=True) or charger.max_import)


_EV_ACTIONS: dict[str, Callable[[EvCharger, dict[str, Any]], None]] = {
    "adjust-charge-power-limit": _ev_power_limit,
    "set-plug-and-go": _ev_plug_and_go,
    "set-session-energy-limit": _ev_energy_limit,
    "change-mode": _ev_mode,
    "configuration-mode": _ev_configuration,
    "start-charge": _ev_start,
    "stop-charge": _ev_stop,
    "change-randomised-delay-duration": _ev_delay,
    "set-max-import-capacity": _ev_import,
}


def _apply_ev_command(charger: EvCharger, command: str, body: dict[str, Any]) -> None:
    action = _EV_ACTIONS.get(command)
    if action is not None:
        action(charger, body)
