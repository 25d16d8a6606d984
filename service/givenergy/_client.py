"""`GivEnergyClient`: one typed async method per GivEnergy Cloud API v1 endpoint."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr

from service.givenergy._control import ControlResult, ev_command_result, inverter_result, multi_result
from service.givenergy._errors import UnexpectedResponseError
from service.givenergy._http import PoolOwner, RequestCore, RetryPolicy, connection_pool
from service.givenergy._models import (
    Account,
    CommunicationDevice,
    DataPoint,
    EmsSystemData,
    EnergyFlow,
    EvCharger,
    EvChargingSession,
    EvMeterDataPoint,
    InverterEvent,
    MeterData,
    Preset,
    SettingDefinition,
    Site,
    SiteStatus,
    SmartDevice,
    SmartDeviceDataPoint,
    SuccessResult,
    SystemData,
)
from service.givenergy._ratelimit import GLOBAL_BUCKET, NOTIFICATION_BUCKET, CredentialLimiter, Lane

if TYPE_CHECKING:
    from service.settings import GivEnergySettings

DEFAULT_BASE_URL = "https://api.givenergy.cloud/v1"
DEFAULT_PAGE_SIZE = 1000
MULTI_CONTROL_MAX_SERIALS = 1000

_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class _Route:
    """An endpoint: its template (``"/site/{id}/status"``, what errors, logs and metrics name) and the path it
    was filled into, relative to the base URL."""

    template: str
    path: str


def _route(template: str, /, **values: str | int) -> _Route:
    """The endpoint ``template`` with its placeholders filled by the URL-quoted ``values``."""
    path = template.format(**{key: quote(str(value), safe="") for key, value in values.items()})
    return _Route(template, path.lstrip("/"))


def _iso(value: date | datetime | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


def _optional_params(**values: date | datetime | str | bool | None) -> list[tuple[str, Any]]:
    """Query parameters of the values given, in order: ``None`` is left out, a flag is sent as ``1``/``0``."""
    return [
        (name, ("1" if value else "0") if isinstance(value, bool) else _iso(value))
        for name, value in values.items()
        if value is not None
    ]


def _data(body: Any) -> Any:
    """The ``data`` member of a body, or the body itself for endpoints that answer without it."""
    if isinstance(body, dict) and "data" in body:
        return body["data"]
    return body


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return value
    return [value]


class GivEnergyClient(PoolOwner):
    """Async client of the GivEnergy Cloud API v1, for one credential.

    Every request goes through the credential's shared `CredentialLimiter` (when given) in the client's
    lane. Reads are retried on transient failures; writes never are. Control calls return a
    `ControlResult` instead of raising on a device-level failure.

    Example::

        limiter = RateLimiter(redis, namespace=settings.redis.namespace)
        budget = limiter.credential(str(credential.id), requests_per_minute=credential.requests_per_minute)
        async with GivEnergyClient(token, limiter=budget, lane=Lane.SYNC) as client:
            async for device in client.iter_communication_devices():
                ...
            result = await client.with_lane(Lane.INTERACTIVE).write_setting(serial, 71, 20)

    Args:
        token: The API token (kept out of logs, exceptions and ``repr``).
        base_url: API base URL.
        timeout: Timeout of ordinary requests, seconds.
        control_timeout: Timeout of calls that block on a device (settings, presets, multi-control, EV
            commands, request-data), seconds.
        limiter: The credential's shared limiter; ``None`` sends without limiting (tests, one-off tools).
        lane: Priority lane of this client's requests (`with_lane` gives a view in another lane).
        context: Default ``context`` sent with control calls (shown in GivEnergy's remote-control history).
        retry: Retry policy of idempotent requests.
        max_limiter_wait: Raise `RateLimitedError` instead of waiting longer than this for a slot.
        transport: An httpx transport (``httpx.ASGITransport`` for the simulator, ``MockTransport``...).
        http_client: Use this httpx client instead of creating one (its base URL and auth are not changed;
            the client will not close it).
    """

    def __init__(
        self,
        token: str | SecretStr,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        control_timeout: float = 240.0,
        limiter: CredentialLimiter | None = None,
        lane: Lane = Lane.SYNC,
        context: str = "givfleet",
        retry: RetryPolicy | None = None,
        max_limiter_wait: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self._owns_http = http_client is None
        self._http = http_client or connection_pool(base_url, timeout=timeout, transport=transport)
        self._control_timeout = control_timeout
        self._core = RequestCore(
            self._http, limiter=limiter, retry=retry or RetryPolicy(), max_limiter_wait=max_limiter_wait
        )
        self._lane = lane
        self._context = context

    @classmethod
    def from_settings(cls, token: str | SecretStr, settings: GivEnergySettings, **kwargs: Any) -> GivEnergyClient:
        """Build a client from the ``givenergy`` settings group (base URL and timeouts).

        Args:
            token: The API token.
            settings: A ``GivEnergySettings`` instance.
            **kwargs: Any other constructor argument (``limiter``, ``lane``, ``transport``...).

        Returns:
            The client.
        """
        kwargs.setdefault("base_url", settings.base_url)
        kwargs.setdefault("timeout", settings.timeout_seconds)
        kwargs.setdefault("control_timeout", settings.control_timeout_seconds)
        return cls(token, **kwargs)

    def __repr__(self) -> str:
        limiter = self._core.limiter
        credential = limiter.credential_id if limiter is not None else None
        base = str(self._http.base_url)
        return f"GivEnergyClient(base_url={base!r}, credential_id={credential!r}, lane={self._lane.name})"

    @property
    def lane(self) -> Lane:
        """The lane of this client's requests."""
        return self._lane

    @property
    def limiter(self) -> CredentialLimiter | None:
        """The credential's limiter, if any (ask it for `CredentialLimiter.capacity`)."""
        return self._core.limiter

    def with_lane(self, lane: Lane) -> GivEnergyClient:
        """A view of this client in another lane, sharing its connection pool and limiter.

        Closing the view does not close the shared connection pool.
        """
        view = copy.copy(self)
        view._lane = lane
        view._owns_http = False
        return view

    async def aclose(self) -> None:
        """Close the connection pool (when this client created it)."""
        if self._owns_http:
            await super().aclose()

    # --- plumbing -------------------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        route: _Route,
        *,
        idempotent: bool,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json: Any = None,
        control: bool = False,
        bucket: str = GLOBAL_BUCKET,
    ) -> Any:
        response = await self._core.send(
            method,
            route.path,
            endpoint=f"{method} {route.template}",
            lane=self._lane,
            idempotent=idempotent,
            bucket=bucket,
            params=params,
            json=json,
            headers={"Authorization": f"Bearer {self._token.get_secret_value()}", "Content-Type": "application/json"},
            request_timeout=self._control_timeout if control else None,
        )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise UnexpectedResponseError(
                "response is not JSON", endpoint=f"{method} {route.template}", status_code=response.status_code
            ) from None

    async def _get_one(self, route: _Route, model: type[_M], *, control: bool = False) -> _M:
        data = _data(await self._request("GET", route, idempotent=True, control=control))
        if isinstance(data, list):
            data = data[0] if data else {}
        return model.model_validate(data if isinstance(data, dict) else {})

    async def _get_list(self, route: _Route, model: type[_M], *, control: bool = False) -> list[_M]:
        data = _data(await self._request("GET", route, idempotent=True, control=control))
        return [model.model_validate(item) for item in _as_list(data) if isinstance(item, dict)]

    async def get_page(
        self,
        endpoint: str,
        *,
        page: int = 1,
        page_size: int = DEFAULT_PAGE_SIZE,
        params: Sequence[tuple[str, Any]] = (),
        **path_params: str | int,
    ) -> Page:
        """One page of any paginated list, with its metadata (for planners that need ``last_page``/``total``).

        The ``iter_*`` methods are simpler when every item is wanted.

        Args:
            endpoint: The route template, e.g. ``"/communication-device"`` or ``"/account-children/{id}"``.
            page: Page number (1-based).
            page_size: Requested size; the server may use another one (see `Page.per_page`).
            params: Extra query parameters.
            **path_params: Values of the template's placeholders (URL-quoted here).

        Returns:
            The page's raw items (dicts; validate them with the matching model) and metadata.
        """
        if page_size < 1 or page < 1:
            raise ValueError("page and page_size must be positive")
        return await self._fetch_page(_route(endpoint, **path_params), page=page, page_size=page_size, params=params)

    async def _fetch_page(
        self, route: _Route, *, page: int, page_size: int, params: Sequence[tuple[str, Any]]
    ) -> Page:
        """One page of a paginated list: its dict items and metadata (shared by `get_page` and `_paginate`)."""
        body = await self._request(
            "GET", route, idempotent=True, params=[*params, ("page", page), ("pageSize", page_size)]
        )
        items = [item for item in _as_list(_data(body)) if isinstance(item, dict)]
        meta = _dict(body.get("meta")) if isinstance(body, dict) else {}
        return Page(
            items=items,
            page=page,
            last_page=_opt_int(meta.get("last_page")),
            total=_opt_int(meta.get("total")),
            per_page=_opt_int(meta.get("per_page")),
            has_next=self._has_next(body, page, items),
        )

    async def _paginate(
        self,
        route: _Route,
        model: type[_M],
        *,
        page_size: int,
        params: Sequence[tuple[str, Any]] = (),
    ) -> AsyncIterator[_M]:
        """Yield every item of every page, trusting ``meta.last_page`` / ``links.next``, never the size asked."""
        if page_size < 1:
            raise ValueError("page_size must be positive")
        page = 1
        previous: list[dict[str, Any]] | None = None
        while True:
            fetched = await self._fetch_page(route, page=page, page_size=page_size, params=params)
            if fetched.items and fetched.items == previous:
                # A server that ignores ``page`` while promising a next link would loop forever.
                return
            for item in fetched.items:
                yield model.model_validate(item)
            if not fetched.has_next:
                return
            previous = fetched.items
            page += 1

    @staticmethod
    def _has_next(body: Any, page: int, items: list[Any]) -> bool:
        if not isinstance(body, dict):
            return False
        meta = _dict(body.get("meta"))
        links = _dict(body.get("links"))
        last_page = meta.get("last_page")
        current = meta.get("current_page")
        if isinstance(last_page, int | float) and not isinstance(last_page, bool):
            current_page = int(current) if isinstance(current, int | float) else page
            return max(page, current_page) < int(last_page)
        # No usable meta: follow links.next, but an empty page always ends the walk.
        return bool(links.get("next")) and bool(items)

    def _ctx(self, context: str | None) -> str:
        return context if context is not None else self._context

    # --- account --------------------------------------------------------------------------------------

    async def get_account(self) -> Account:
        """Your account (``GET /account``)."""
        return await self._get_one(_route("/account"), Account)

    async def get_account_by_id(self, account_id: int | str) -> Account:
        """An account by id (``GET /account/{id}``; engineer+)."""
        return await self._get_one(_route("/account/{id}", id=account_id), Account)

    async def get_account_by_username(self, username: str) -> Account:
        """An account by username (``GET /account/search/{username}``; engineer+)."""
        return await self._get_one(_route("/account/search/{username}", username=username), Account)

    def iter_account_devices(
        self, account: int | str, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> AsyncIterator[CommunicationDevice]:
        """Every dongle of an account (``GET /account/{account}/devices``; engineer+)."""
        return self._paginate(
            _route("/account/{account}/devices", account=account), CommunicationDevice, page_size=page_size
        )

    def iter_account_children(
        self, account_id: int | str | None = None, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> AsyncIterator[Account]:
        """Accounts your account (or ``account_id``) has access to (``GET /account-children[/{id}]``)."""
        if account_id is None:
            return self._paginate(_route("/account-children"), Account, page_size=page_size)
        return self._paginate(_route("/account-children/{id}", id=account_id), Account, page_size=page_size)

    # --- communication devices ------------------------------------------------------------------------

    def iter_communication_devices(self, *, page_size: int = DEFAULT_PAGE_SIZE) -> AsyncIterator[CommunicationDevice]:
        """Every communication device (and its inverter) you can see (``GET /communication-device``)."""
        return self._paginate(_route("/communication-device"), CommunicationDevice, page_size=page_size)

    async def get_communication_device(self, serial: str) -> CommunicationDevice:
        """A communication device by serial (``GET /communication-device/{serial}``)."""
        return await self._get_one(_route("/communication-device/{serial}", serial=serial), CommunicationDevice)

    # --- EMS ------------------------------------------------------------------------------------------

    async def get_ems_system_data(self, serial: str) -> EmsSystemData:
        """Latest system data of a Plant EMS (``GET /ems/{serial}/system-data/latest``)."""
        return await self._get_one(_route("/ems/{serial}/system-data/latest", serial=serial), EmsSystemData)

    # --- EV chargers ----------------------------------------------------------------------------------

    def iter_ev_chargers(self, *, page_size: int = DEFAULT_PAGE_SIZE) -> AsyncIterator[EvCharger]:
        """Your EV chargers (``GET /ev-charger``; customer accounts only)."""
        return self._paginate(_route("/ev-charger"), EvCharger, page_size=page_size)

    async def get_ev_charger(self, charger_uuid: str) -> EvCharger:
        """An EV charger by UUID (``GET /ev-charger/{uuid}``)."""
        return await self._get_one(_route("/ev-charger/{uuid}", uuid=charger_uuid), EvCharger)

    def iter_ev_charger_meter_data(
        self,
        charger_uuid: str,
        start_time: datetime | str,
        end_time: datetime | str,
        *,
        measurands: Iterable[int] = (),
        meter_ids: Iterable[int] = (),
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[EvMeterDataPoint]:
        """Meter data points of an EV charger (``GET /ev-charger/{uuid}/meter-data``)."""
        params: list[tuple[str, Any]] = [("start_time", _iso(start_time)), ("end_time", _iso(end_time))]
        params += [("measurands[]", m) for m in measurands]
        params += [("meter_ids[]", m) for m in meter_ids]
        return self._paginate(
            _route("/ev-charger/{uuid}/meter-data", uuid=charger_uuid),
            EvMeterDataPoint,
            page_size=page_size,
            params=params,
        )

    async def get_ev_charger_commands(self, charger_uuid: str) -> list[str]:
        """Commands the EV charger supports (``GET /ev-charger/{uuid}/commands``)."""
        data = _data(
            await self._request("GET", _route("/ev-charger/{uuid}/commands", uuid=charger_uuid), idempotent=True)
        )
        return [str(item) for item in _as_list(data) if item is not None]

    async def get_ev_charger_command_data(self, charger_uuid: str, command: str) -> Any:
        """Current data of one command of an EV charger (``GET /ev-charger/{uuid}/commands/{command}``).

        Returns:
            The command's ``data`` as JSON (its shape depends on the command).
        """
        return _data(
            await self._request(
                "GET",
                _route("/ev-charger/{uuid}/commands/{command}", uuid=charger_uuid, command=command),
                idempotent=True,
            )
        )

    async def send_ev_charger_command(
        self, charger_uuid: str, command: str, data: Mapping[str, Any] | None = None
    ) -> ControlResult:
        """Send a command to an EV charger (``POST /ev-charger/{uuid}/commands/{command}``). Never retried.

        Returns:
            The outcome (``code`` from the EV command table: 0 success, -1 timeout ... -5 error).
        """
        body = await self._request(
            "POST",
            _route("/ev-charger/{uuid}/commands/{command}", uuid=charger_uuid, command=command),
            idempotent=False,
            json=dict(data or {}),
            control=True,
        )
        return ev_command_result(_data(body))

    def iter_ev_charging_sessions(
        self,
        charger_uuid: str,
        *,
        start_time: date | datetime | str | None = None,
        end_time: date | datetime | str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[EvChargingSession]:
        """Charging sessions of an EV charger (``GET /ev-charger/{uuid}/charging-sessions``)."""
        return self._paginate(
            _route("/ev-charger/{uuid}/charging-sessions", uuid=charger_uuid),
            EvChargingSession,
            page_size=page_size,
            params=_optional_params(start_time=start_time, end_time=end_time),
        )

    # --- energy flows ---------------------------------------------------------------------------------

    async def get_energy_flows(
        self,
        serial: str,
        start_time: date | datetime | str,
        end_time: date | datetime | str,
        *,
        grouping: int,
        types: Iterable[int] | None = None,
    ) -> list[EnergyFlow]:
        """Energy flows of an inverter between two times (``POST /inverter/{serial}/energy-flows``; a read).

        Args:
            serial: Inverter serial.
            start_time: Start (date or datetime).
            end_time: End.
            grouping: 0 half-hourly, 1 daily, 2 monthly, 3 yearly, 4 total.
            types: Flow type ids (0 PV to home ... 6 battery to grid); all when ``None``.
        """
        payload: dict[str, Any] = {"start_time": _iso(start_time), "end_time": _iso(end_time), "grouping": grouping}
        if types is not None:
            payload["types"] = list(types)
        body = await self._request(
            "POST",
            _route("/inverter/{serial}/energy-flows", serial=serial),
            idempotent=True,
            json=payload,
        )
        return [EnergyFlow.model_validate(item) for item in _as_list(_data(body)) if isinstance(item, dict)]

    # --- presets and settings -------------------------------------------------------------------------

    async def get_presets(self, serial: str) -> list[Preset]:
        """Setting presets of an inverter (``GET /inverter/{serial}/presets``)."""
        return await self._get_list(_route("/inverter/{serial}/presets", serial=serial), Preset)

    async def modify_preset(
        self, serial: str, preset_id: int | str, parameters: Mapping[str, Any], *, context: str | None = None
    ) -> ControlResult:
        """Apply a preset (``POST /inverter/{serial}/presets/{preset}``). Never retried.

        Args:
            serial: Inverter serial.
            preset_id: The preset's id.
            parameters: The preset's parameters (see `Preset.parameters`).
            context: Shown in the remote-control history (default: the client's context).
        """
        body = await self._request(
            "POST",
            _route("/inverter/{serial}/presets/{preset}", serial=serial, preset=preset_id),
            idempotent=False,
            json={**parameters, "context": self._ctx(context)},
            control=True,
        )
        return inverter_result(_data(body), is_write=True)

    async def get_settings(self, serial: str) -> list[SettingDefinition]:
        """Settings the inverter exposes (``GET /inverter/{serial}/settings``)."""
        return await self._get_list(
            _route("/inverter/{serial}/settings", serial=serial), SettingDefinition, control=True
        )

    async def read_setting(self, serial: str, setting_id: int, *, context: str | None = None) -> ControlResult:
        """Read a setting from the device (``POST /inverter/{serial}/settings/{id}/read``; retried: a read).

        Returns:
            ``value`` is what the device reports (mixed types: bool, int, numeric string, "HH:MM").
        """
        body = await self._request(
            "POST",
            _route("/inverter/{serial}/settings/{id}/read", serial=serial, id=setting_id),
            idempotent=True,
            json={"context": self._ctx(context)},
            control=True,
        )
        return inverter_result(_data(body), is_write=False)

    async def write_setting(
        self, serial: str, setting_id: int, value: Any, *, context: str | None = None
    ) -> ControlResult:
        """Write a setting (``POST /inverter/{serial}/settings/{id}/write``). Never retried by the client.

        A device-level failure (HTTP 200 with ``success: false``) is returned, not raised: see
        `ControlResult.outcome`. A transport failure raises `UpstreamUnavailableError` and means the
        outcome is unknown.
        """
        body = await self._request(
            "POST",
            _route("/inverter/{serial}/settings/{id}/write", serial=serial, id=setting_id),
            idempotent=False,
            json={"value": value, "context": self._ctx(context)},
            control=True,
        )
        return inverter_result(_data(body), requested=value, is_write=True)

    async def multi_read_setting(
        self, serials: Sequence[str], setting_id: int, *, context: str | None = None
    ) -> dict[str, ControlResult]:
        """Read one setting on many inverters (``POST /multi-control/read``; 1000 serials per request)."""
        fields = {"setting_id": setting_id, "context": self._ctx(context)}
        route = _route("/multi-control/read")
        return await self._multi_control(route, serials, fields, requested=None, is_write=False)

    async def multi_write_setting(
        self, serials: Sequence[str], setting_id: int, value: Any, *, context: str | None = None
    ) -> dict[str, ControlResult]:
        """Write one value to one setting on many inverters (``POST /multi-control/write``). Never retried.

        Serials are sent in chunks of 1000 (the documented maximum); a failure raises after the chunks
        already sent, whose results are lost with the exception: keep chunks small when that matters.

        Returns:
            Serial -> outcome (the value each device reports, or its remote-control code).
        """
        fields = {"setting_id": setting_id, "value": value, "context": self._ctx(context)}
        route = _route("/multi-control/write")
        return await self._multi_control(route, serials, fields, requested=value, is_write=True)

    async def _multi_control(
        self, route: _Route, serials: Sequence[str], fields: Mapping[str, Any], *, requested: Any, is_write: bool
    ) -> dict[str, ControlResult]:
        """Send ``fields`` for every chunk of ``serials`` (writes are never retried); each serial's outcome."""
        results: dict[str, ControlResult] = {}
        for chunk in _chunks(serials, MULTI_CONTROL_MAX_SERIALS):
            body = await self._request(
                "POST", route, idempotent=not is_write, json={"inverter_serials": chunk, **fields}, control=True
            )
            results.update(_multi(body, chunk, requested=requested, is_write=is_write))
        return results

    # --- inverter data --------------------------------------------------------------------------------

    async def request_inverter_data(self, serial: str) -> SuccessResult:
        """Ask the inverter to persist a data point now (``GET /inverter/{serial}/request-data``; approved users)."""
        return await self._get_one(
            _route("/inverter/{serial}/request-data", serial=serial), SuccessResult, control=True
        )

    async def get_system_data(self, serial: str) -> SystemData:
        """Latest system data (``GET /inverter/{serial}/system-data/latest``); leaves may be null."""
        return await self._get_one(_route("/inverter/{serial}/system-data/latest", serial=serial), SystemData)

    async def get_meter_data(self, serial: str) -> MeterData:
        """Latest meter data (``GET /inverter/{serial}/meter-data/latest``); ``today``/``total`` may be null."""
        return await self._get_one(_route("/inverter/{serial}/meter-data/latest", serial=serial), MeterData)

    def iter_events(
        self,
        serial: str,
        *,
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
        cleared: bool | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> AsyncIterator[InverterEvent]:
        """Faults of an inverter (``GET /inverter/{serial}/events``)."""
        return self._paginate(
            _route("/inverter/{serial}/events", serial=serial),
            InverterEvent,
            page_size=page_size,
            params=_optional_params(start=start, end=end, cleared=cleared),
        )

    def iter_data_points(
        self, serial: str, day: date | str, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> AsyncIterator[DataPoint]:
        """Data points of one day, the inverter's local date (``GET /inverter/{serial}/data-points/{date}``)."""
        return self._paginate(
            _route("/inverter/{serial}/data-points/{date}", serial=serial, date=_iso(day)),
            DataPoint,
            page_size=page_size,
        )

    # --- notifications --------------------------------------------------------------------------------

    async def send_notification(
        self, title: str, body: str, *, platforms: Sequence[str] = ("persist",), icon: str | None = None
    ) -> SuccessResult:
        """Send a notification to your account (``POST /notification/send``; 10 per hour, its own budget).

        Never retried. Title and body must not contain e-mail addresses, phone numbers or URLs.
        """
        payload: dict[str, Any] = {"platforms": list(platforms), "title": title, "body": body}
        if icon is not None:
            payload["icon"] = icon
        response = await self._request(
            "POST",
            _route("/notification/send"),
            idempotent=False,
            json=payload,
            bucket=NOTIFICATION_BUCKET,
        )
        return SuccessResult.model_validate(_dict(_data(response)))

    # --- sites ----------------------------------------------------------------------------------------

    def iter_sites(self, *, page_size: int = DEFAULT_PAGE_SIZE) -> AsyncIterator[Site]:
        """Your sites (``GET /site``)."""
        return self._paginate(_route("/site"), Site, page_size=page_size)

    async def get_site(self, site_id: int | str) -> Site:
        """A site by id (``GET /site/{id}``)."""
        return await self._get_one(_route("/site/{id}", id=site_id), Site)

    async def get_site_status(self, site_id: int | str) -> SiteStatus:
        """Scheme status of a site (``GET /site/{id}/status``; approved users)."""
        return await self._get_one(_route("/site/{id}/status", id=site_id), SiteStatus)

    async def update_site_status(self, site_id: int | str, status: str | None) -> SuccessResult:
        """Set (or with ``None`` delete) the scheme status of a site (``POST /site/{id}/status``). Never retried."""
        body = await self._request(
            "POST", _route("/site/{id}/status", id=site_id), idempotent=False, json={"status": status}
        )
        return SuccessResult.model_validate(_dict(_data(body)))

    # --- smart devices --------------------------------------------------------------------------------

    def iter_smart_devices(self, *, page_size: int = DEFAULT_PAGE_SIZE) -> AsyncIterator[SmartDevice]:
        """Your smart devices (``GET /smart-device``)."""
        return self._paginate(_route("/smart-device"), SmartDevice, page_size=page_size)

    async def create_smart_device(
        self,
        *,
        serial_number: str,
        alias: str,
        product_name: str,
        manufacturer: str,
        other_data: Mapping[str, Any] | None = None,
    ) -> SmartDevice:
        """Register a smart device (``POST /smart-device``). Never retried."""
        body = await self._request(
            "POST",
            _route("/smart-device"),
            idempotent=False,
            json={
                "serial_number": serial_number,
                "alias": alias,
                "product_name": product_name,
                "manufacturer": manufacturer,
                "other_data": dict(other_data or {}),
            },
        )
        items = _as_list(_data(body))
        return SmartDevice.model_validate(items[0] if items and isinstance(items[0], dict) else {})

    async def get_smart_device(self, device_uuid: str) -> SmartDevice:
        """A smart device by UUID (``GET /smart-device/{uuid}``)."""
        return await self._get_one(_route("/smart-device/{uuid}", uuid=device_uuid), SmartDevice)

    def iter_smart_device_data(
        self, device_uuid: str, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> AsyncIterator[SmartDeviceDataPoint]:
        """Data points of a smart device (``GET /smart-device/{uuid}/data``)."""
        return self._paginate(
            _route("/smart-device/{uuid}/data", uuid=device_uuid),
            SmartDeviceDataPoint,
            page_size=page_size,
        )

    async def create_smart_device_data_point(
        self, device_uuid: str, *, time: datetime | str, power: float
    ) -> list[SmartDeviceDataPoint]:
        """Store a data point of a smart device (``POST /smart-device/{uuid}/data``). Never retried."""
        body = await self._request(
            "POST",
            _route("/smart-device/{uuid}/data", uuid=device_uuid),
            idempotent=False,
            json={"time": _iso(time), "power": power},
        )
        return [SmartDeviceDataPoint.model_validate(i) for i in _as_list(_data(body)) if isinstance(i, dict)]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a paginated list, as the server answered it.

    Attributes:
        items: The raw items (validate with the endpoint's model).
        page: The page number requested.
        last_page: ``meta.last_page`` (``None`` when the answer had no usable meta).
        total: ``meta.total``.
        per_page: ``meta.per_page``: the size the server really used.
        has_next: Whether another page follows (from ``last_page``, else ``links.next``).
    """

    items: list[dict[str, Any]]
    page: int
    last_page: int | None
    total: int | None
    per_page: int | None
    has_next: bool


def _opt_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _multi(body: Any, serials: list[str], *, requested: Any, is_write: bool) -> dict[str, ControlResult]:
    data = _data(body)
    if not isinstance(data, dict):
        data = {}
    results: dict[str, ControlResult] = {}
    for serial in serials:
        if serial in data:
            results[serial] = multi_result(data[serial], requested=requested)
        else:
            results[serial] = inverter_result(
                {"success": False, "message": "no answer for this inverter"}, requested=requested, is_write=is_write
            )
    return results
