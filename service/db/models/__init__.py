"""All ORM models, one module per aggregate. Importing this package registers every table on ``Base.metadata``
(Alembic's autogenerate and the migration test rely on it)."""

from service.db.models.api_key import ApiKey
from service.db.models.audit import AuditEvent
from service.db.models.campaign import (
    Campaign,
    CampaignChunk,
    CampaignKind,
    CampaignState,
    CampaignTarget,
    CatalogueSetting,
    ChunkKind,
    ChunkState,
    SettingCatalogue,
    TargetState,
)
from service.db.models.credential import CredentialHealth, CredentialKind, UpstreamCredential
from service.db.models.mirror import (
    BatteryModule,
    Dongle,
    FleetAccount,
    Inverter,
    InverterChange,
    InverterChangeKind,
    Meter,
    Site,
    SyncKind,
    SyncRun,
    SyncSchedule,
    SyncState,
)
from service.db.models.tenant import Tenant, TenantStatus

__all__ = [
    "ApiKey",
    "AuditEvent",
    "BatteryModule",
    "Campaign",
    "CampaignChunk",
    "CampaignKind",
    "CampaignState",
    "CampaignTarget",
    "CatalogueSetting",
    "ChunkKind",
    "ChunkState",
    "CredentialHealth",
    "CredentialKind",
    "Dongle",
    "FleetAccount",
    "Inverter",
    "InverterChange",
    "InverterChangeKind",
    "Meter",
    "SettingCatalogue",
    "Site",
    "SyncKind",
    "SyncRun",
    "SyncSchedule",
    "SyncState",
    "TargetState",
    "Tenant",
    "TenantStatus",
    "UpstreamCredential",
]
