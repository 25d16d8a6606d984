"""All ORM models, one module per aggregate. Importing this package registers every table on ``Base.metadata``
(Alembic's autogenerate and the migration test rely on it)."""

from service.db.models.api_key import ApiKey
from service.db.models.audit import AuditEvent
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
from service.db.models.monitoring import (
    Alert,
    AlertState,
    Incident,
    IncidentKind,
    IncidentState,
    MaintenanceWindow,
    MonitoredInverter,
    MonitoringSettings,
    Severity,
    SeverityOverride,
)
from service.db.models.notifications import NotificationEvent, NotificationEventType
from service.db.models.tenant import Tenant, TenantStatus

__all__ = [
    "Alert",
    "AlertState",
    "ApiKey",
    "AuditEvent",
    "BatteryModule",
    "CredentialHealth",
    "CredentialKind",
    "Dongle",
    "FleetAccount",
    "Incident",
    "IncidentKind",
    "IncidentState",
    "Inverter",
    "InverterChange",
    "InverterChangeKind",
    "MaintenanceWindow",
    "Meter",
    "MonitoredInverter",
    "MonitoringSettings",
    "NotificationEvent",
    "NotificationEventType",
    "Severity",
    "SeverityOverride",
    "Site",
    "SyncKind",
    "SyncRun",
    "SyncSchedule",
    "SyncState",
    "Tenant",
    "TenantStatus",
    "UpstreamCredential",
]
