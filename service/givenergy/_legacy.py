"""`LegacyPortalClient`: the older GivManage portal API (cookie session), an optional, clearly legacy source.

Its per-cell battery data exists nowhere in API v1. Whether the real portal still serves it is unknown.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from pydantic import Field, SecretStr, field_validator

from service.givenergy._errors import CredentialError, UnauthorisedError, UnexpectedResponseError
from service.givenergy._http import PoolOwner, RequestCore, RetryPolicy, _json_or_none, connection_pool
from service.givenergy._models import Bool, Float, Int, Model, Str
from service.givenergy._ratelimit import CredentialLimiter, Lane

DEFAULT_LEGACY_BASE_URL = "https://www.givenergy.cloud/GivManage/api"


class LegacyInverterInfo(Model):
    """``inverter/getInverterInfo``."""

    serial_num: Str = Field(default=None, alias="serialNum")
    alias: Str = None
    bat_percent: Str = Field(default=None, alias="batPercent")
    battery_type: Str = Field(default=None, alias="batteryType")
    commission_date: Str = Field(default=None, alias="commissionDate")
    datalog_sn: Str = Field(default=None, alias="datalogSn")
    device_type: Str = Field(default=None, alias="deviceType")
    nominal_capacity: Float = Field(default=None, alias="nominalCapacity")
    nominal_power: Float = Field(default=None, alias="nominalPower")
    product_model: Str = Field(default=None, alias="productModel")
    success: Bool = None


class LegacyRuntime(Model):
    """``inverter/getInverterRuntime``: a power snapshot in watts."""

    lost: Bool = None
    pac: Float = None
    p_grid: Float = Field(default=None, alias="pGrid")
    p_load: Float = Field(default=None, alias="pLoad")
    ppv1: Float = None
    ppv2: Float = None
    status: Str = None
    status_text: Str = Field(default=None, alias="statusText")
    success: Bool = None


class LegacyEnergy(Model):
    """``inverter/getInverterEnergy``: generation for a day, month, year or in total (kWh)."""

    energy: Float = None
    energy_text: Str = Field(default=None, alias="energyText")
    serial_num: Str = Field(default=None, alias="serialNum")
    success: Bool = None


class LegacyBatteryModule(Model):
    """One battery module of ``pcs/batCell/getBatCellData`` (cell voltages in mV)."""

    module: Int = None
    module_soc: Float = Field(default=None, alias="moduleSoc")
    module_voltage: Float = Field(default=None, alias="moduleVoltage")
    max_volt_item: Int = Field(default=None, alias="maxVoltItem")
    min_volt_item: Int = Field(default=None, alias="minVoltItem")
    max_volt_diff_value: Float = Field(default=None, alias="maxVoltDiffValue")
    charging: Int = None
    discharging: Int = None

    @property
    def cell_voltages_mv(self) -> list[float | None]:
        """``cellVoltage1..N`` in order."""
        return _numbered(self.model_extra or {}, "cellVoltage", "")

    @property
    def cell_temperatures(self) -> list[float | None]:
        """``cellTempreture1Text..N`` (sic) in °C, in order."""
        return _numbered(self.model_extra or {}, "cellTempreture", "Text")


class LegacyBatteryCells(Model):
    """``pcs/batCell/getBatCellData``."""

    lost: Bool = None
    max_volt_module: Int = Field(default=None, alias="maxVoltModule")
    min_volt_module: Int = Field(default=None, alias="minVoltModule")
    modules: list[LegacyBatteryModule] = Field(default_factory=list)
    success: Bool = None

    @field_validator("modules", mode="before")
    @classmethod
    def _modules_list(cls, value: Any) -> Any:
        return value if isinstance(value, list) else []


def _numbered(extra: dict[str, Any], prefix: str, suffix: str) -> list[float | None]:
    found: dict[int, float | None] = {}
    for key, raw in extra.items():
        if not (key.startswith(prefix) and key.endswith(suffix)):
            continue
        middle = key[len(prefix) : len(key) - len(suffix)] if suffix else key[len(prefix) :]
        if not middle.isdigit():
            continue
        try:
            found[int(middle)] = float(raw)
        except (TypeError, ValueError):
            found[int(middle)] = None
    return [found[i] for i in sorted(found)]


class LegacyPortalClient(PoolOwner):
    """Async client of the legacy GivManage portal API (account + password, session cookie).

    Logs in lazily and again whenever the session has expired (a 401/403, a redirect, or a non-JSON
    answer), once per call. The password is sent in the form body, never in a URL.

    Args:
        account: Portal account name.
        password: Portal password (kept out of logs, exceptions and ``repr``).
        base_url: Portal API base URL.
        timeout: Request timeout, seconds.
        limiter: Optional limiter view; the portal documents no limits, so none is applied by default.
        lane: Lane of the requests when a limiter is given.
        retry: Retry policy (every portal call is a read).
        transport: An httpx transport.
    """

    def __init__(
        self,
        account: str,
        password: str | SecretStr,
        *,
        base_url: str = DEFAULT_LEGACY_BASE_URL,
        timeout: float = 30.0,
        limiter: CredentialLimiter | None = None,
        lane: Lane = Lane.SYNC,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._account = account
        self._password = password if isinstance(password, SecretStr) else SecretStr(password)
        self._http = connection_pool(base_url, timeout=timeout, transport=transport)
        self._core = RequestCore(self._http, limiter=limiter, retry=retry or RetryPolicy(), max_limiter_wait=None)
        self._lane = lane
        self._logged_in = False
        self._login_lock = asyncio.Lock()
        self.logins = 0
        """How many times this client has logged in (observability and tests)."""

    def __repr__(self) -> str:
        return f"LegacyPortalClient(base_url={str(self._http.base_url)!r}, account={self._account!r})"

    async def login(self) -> None:
        """Log in and keep the session cookie.

        Raises:
            UnauthorisedError: The portal refused the account or password.
        """
        async with self._login_lock:
            await self._login_locked()

    async def _login_unless_renewed(self, seen: int) -> None:
        """Log in, unless another caller already did since generation ``seen`` (``logins`` then)."""
        async with self._login_lock:
            if self._logged_in and self.logins != seen:
                return
            await self._login_locked()

    async def _login_locked(self) -> None:
        self._http.cookies.clear()
        response = await self._core.send(
            "POST",
            "login",
            endpoint="POST /login",
            lane=self._lane,
            idempotent=True,
            accept_redirects=True,
            data={"account": self._account, "password": self._password.get_secret_value()},
        )
        body = _json_or_none(response)
        if isinstance(body, dict) and body.get("success") is False:
            raise UnauthorisedError("legacy portal login refused", endpoint="POST /login", status_code=200)
        self._logged_in = True
        self.logins += 1

    def _session_lost(self, generation: int) -> None:
        # Only the session of ``generation`` is gone: a newer one (another caller logged in meanwhile) stays.
        if self.logins == generation:
            self._logged_in = False

    async def _post(self, path: str, form: dict[str, Any]) -> dict[str, Any]:
        endpoint = f"POST /{path}"
        # The login generation this caller's view of the session comes from: concurrent callers that all
        # find the session missing (or expired) log in once, not once each.
        generation = self.logins
        for attempt in range(2):
            if not self._logged_in:
                await self._login_unless_renewed(generation)
            generation = self.logins
            try:
                response = await self._core.send(
                    "POST", path, endpoint=endpoint, lane=self._lane, idempotent=True, data=form, accept_redirects=True
                )
            except CredentialError:
                if attempt:
                    raise
                self._session_lost(generation)
                continue
            if response.is_redirect:
                self._session_lost(generation)
                continue
            body = _json_or_none(response)
            if isinstance(body, dict):
                if body.get("success") is False and _mentions_login(body) and not attempt:
                    self._session_lost(generation)
                    continue
                return body
            # An HTML login page instead of JSON: the session expired.
            self._session_lost(generation)
        raise UnexpectedResponseError("legacy portal did not answer with JSON after logging in", endpoint=endpoint)

    async def get_inverter_info(self, serial: str) -> LegacyInverterInfo:
        """Inverter information (``inverter/getInverterInfo``)."""
        return LegacyInverterInfo.model_validate(await self._post("inverter/getInverterInfo", {"serialNum": serial}))

    async def get_inverter_runtime(self, serial: str) -> LegacyRuntime:
        """Power snapshot (``inverter/getInverterRuntime``)."""
        return LegacyRuntime.model_validate(await self._post("inverter/getInverterRuntime", {"serialNum": serial}))

    async def get_inverter_energy(self, serial: str, kind: int, date_text: str | None = None) -> LegacyEnergy:
        """Generation (``inverter/getInverterEnergy``).

        Args:
            serial: Inverter serial.
            kind: 0 daily (``YYYY-MM-DD``), 1 monthly (``YYYY-MM``), 2 yearly (``YYYY``), 3 total (no date).
            date_text: The date in the format of ``kind``.
        """
        form: dict[str, Any] = {"serialNum": serial, "type": kind}
        if date_text is not None:
            form["dateText"] = date_text
        return LegacyEnergy.model_validate(await self._post("inverter/getInverterEnergy", form))

    async def get_battery_cells(self, serial: str) -> LegacyBatteryCells:
        """Per-cell battery voltages and temperatures (``pcs/batCell/getBatCellData``)."""
        return LegacyBatteryCells.model_validate(await self._post("pcs/batCell/getBatCellData", {"serialNum": serial}))

    async def get_plant_list(self) -> dict[str, Any]:
        """Plants of the account (``plant/getPlantList``), as received."""
        return await self._post("plant/getPlantList", {})


def _mentions_login(body: dict[str, Any]) -> bool:
    text = " ".join(str(body.get(k, "")) for k in ("msg", "message", "error")).lower()
    return "login" in text or "session" in text
