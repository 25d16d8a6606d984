"""The upstream GivEnergy Cloud: the only way givfleet talks to it.

Public surface:

- `GivEnergyClient`: one typed async method per API v1 endpoint; ``iter_*`` methods walk every page.
- `LegacyPortalClient`: the older GivManage portal API (per-cell battery data).
- `RateLimiter` / `CredentialLimiter` / `Lane`: the Redis-backed budget shared by every process that
  uses one credential, with priority lanes and capacity planning.
- `connection_pool` / `PoolOwner`: the httpx pool the clients (and the mirror's counted sync session) talk
  through, and closing it with ``aclose`` or ``async with``.
- Errors (`GivEnergyError` and subclasses) and control outcomes (`ControlResult`, `ControlOutcome`).
- Payload models (`Account`, `CommunicationDevice`, `SystemData`, ...).

Construct a client for a credential::

    from redis.asyncio import Redis
    from service.givenergy import GivEnergyClient, Lane, RateLimiter

    limiter = RateLimiter(Redis.from_url(redis_url), namespace=settings.redis.namespace)  # once per process
    budget = limiter.credential(str(credential.id), requests_per_minute=300)  # stable id, never the token
    client = GivEnergyClient.from_settings(token, settings.givenergy, limiter=budget, lane=Lane.MONITORING)
    async with client:
        data = await client.get_system_data(serial)
        result = await client.with_lane(Lane.INTERACTIVE).write_setting(serial, 71, 20, context="user 42")
        eta = await budget.capacity(Lane.CAMPAIGN, horizon_seconds=600)
"""

from service.givenergy._client import DEFAULT_BASE_URL, DEFAULT_PAGE_SIZE, GivEnergyClient, Page
from service.givenergy._control import (
    ControlOutcome,
    ControlResult,
    EvCommandCode,
    RemoteControlCode,
    classify_inverter_code,
)
from service.givenergy._errors import (
    CredentialError,
    ForbiddenError,
    GivEnergyError,
    NotFoundError,
    PaymentRequiredError,
    RateLimitedError,
    UnauthorisedError,
    UnexpectedResponseError,
    UpstreamUnavailableError,
    UpstreamValidationError,
)
from service.givenergy._http import PoolOwner, RetryPolicy, connection_pool
from service.givenergy._legacy import (
    DEFAULT_LEGACY_BASE_URL,
    LegacyBatteryCells,
    LegacyBatteryModule,
    LegacyEnergy,
    LegacyInverterInfo,
    LegacyPortalClient,
    LegacyRuntime,
)
from service.givenergy._models import (
    Account,
    BatteryCapacity,
    BatteryEnergy,
    BatteryInfo,
    BatteryModule,
    BatteryReadings,
    CommunicationDevice,
    Connections,
    ConsumptionReadings,
    DatalogInfo,
    DataPoint,
    DataPointPower,
    EmsInverter,
    EmsMeter,
    EmsSystemData,
    EnergyFlow,
    EnergyTotals,
    EvCharger,
    EvChargingSession,
    EvMeasurement,
    EvMeterDataPoint,
    GridEnergy,
    GridReadings,
    Inverter,
    InverterEvent,
    InverterInfo,
    InverterReadings,
    MeterData,
    MeterInfo,
    Preset,
    PresetParameter,
    SettingDefinition,
    Site,
    SiteStatus,
    SmartDevice,
    SmartDeviceDataPoint,
    SolarArray,
    SolarReadings,
    SuccessResult,
    SystemData,
    Warranty,
)
from service.givenergy._ratelimit import (
    DEFAULT_CUSTOM_BUCKETS,
    DEFAULT_RESERVES,
    GLOBAL_BUCKET,
    NOTIFICATION_BUCKET,
    BucketPolicy,
    BucketState,
    CredentialLimiter,
    Grant,
    Lane,
    RateLimiter,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CUSTOM_BUCKETS",
    "DEFAULT_LEGACY_BASE_URL",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_RESERVES",
    "GLOBAL_BUCKET",
    "NOTIFICATION_BUCKET",
    "Account",
    "BatteryCapacity",
    "BatteryEnergy",
    "BatteryInfo",
    "BatteryModule",
    "BatteryReadings",
    "BucketPolicy",
    "BucketState",
    "CommunicationDevice",
    "Connections",
    "ConsumptionReadings",
    "ControlOutcome",
    "ControlResult",
    "CredentialError",
    "CredentialLimiter",
    "DataPoint",
    "DataPointPower",
    "DatalogInfo",
    "EmsInverter",
    "EmsMeter",
    "EmsSystemData",
    "EnergyFlow",
    "EnergyTotals",
    "EvCharger",
    "EvChargingSession",
    "EvCommandCode",
    "EvMeasurement",
    "EvMeterDataPoint",
    "ForbiddenError",
    "GivEnergyClient",
    "GivEnergyError",
    "Grant",
    "GridEnergy",
    "GridReadings",
    "Inverter",
    "InverterEvent",
    "InverterInfo",
    "InverterReadings",
    "Lane",
    "LegacyBatteryCells",
    "LegacyBatteryModule",
    "LegacyEnergy",
    "LegacyInverterInfo",
    "LegacyPortalClient",
    "LegacyRuntime",
    "MeterData",
    "MeterInfo",
    "NotFoundError",
    "Page",
    "PaymentRequiredError",
    "PoolOwner",
    "Preset",
    "PresetParameter",
    "RateLimitedError",
    "RateLimiter",
    "RemoteControlCode",
    "RetryPolicy",
    "SettingDefinition",
    "Site",
    "SiteStatus",
    "SmartDevice",
    "SmartDeviceDataPoint",
    "SolarArray",
    "SolarReadings",
    "SuccessResult",
    "SystemData",
    "UnauthorisedError",
    "UnexpectedResponseError",
    "UpstreamUnavailableError",
    "UpstreamValidationError",
    "Warranty",
    "classify_inverter_code",
    "connection_pool",
]
