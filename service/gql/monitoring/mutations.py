# mypy: disable-error-code="untyped-decorator"
"""``acknowledgeAlert``, ``clearAlert``, ``createMaintenanceWindow``, ``deleteMaintenanceWindow`` (operator)."""

from __future__ import annotations

import datetime as dt

import strawberry

from service.core.errors import InvalidParameterError
from service.db.uow import UnitOfWork
from service.gql.context import Info
from service.gql.monitoring.types import Alert, MaintenanceWindow, MonitoringSettings, MonitoringSettingsInput
from service.gql.mutation import MutationPayload, parse_id
from service.monitoring.service import AlertService
from service.monitoring.settings import KNOBS, SettingsChange, update_settings


@strawberry.type(description="The alert after the change.")
class AlertPayload(MutationPayload):
    alert: Alert | None = None


@strawberry.type(description="The window created.")
class MaintenanceWindowPayload(MutationPayload):
    maintenance_window: MaintenanceWindow | None = None


@strawberry.type(description="Whether the window was deleted.")
class DeletePayload(MutationPayload):
    deleted: bool = False


@strawberry.type(description="The settings after the change.")
class MonitoringSettingsPayload(MutationPayload):
    settings: MonitoringSettings | None = None


@strawberry.input(description="A window for one site or one account's subtree (exactly one of them).")
class MaintenanceWindowInput:
    site_id: int | None = None
    account_id: int | None = None
    starts_at: dt.datetime
    ends_at: dt.datetime
    reason: str | None = None


@strawberry.type
class MonitoringMutation:
    @strawberry.mutation(description=(
        "Acknowledge an open alert (operator). Acknowledging it again without a note keeps who, when and the note; "
        "with one, it replaces the note (an empty one erases it) and records who gave it and when. CONFLICT when "
        "the alert is cleared."))
    async def acknowledge_alert(self, info: Info, id: strawberry.ID, note: str | None = None) -> AlertPayload:
        async def work(session: UnitOfWork) -> AlertPayload:
            alert = await AlertService(session, info.context.principal).acknowledge(parse_id(id), note)
            return AlertPayload(alert=Alert.from_row(alert))

        return await AlertPayload.of_work(info, work)

    @strawberry.mutation(description="Clear an alert by hand (operator; recorded, reopened if the fault recurs).")
    async def clear_alert(self, info: Info, id: strawberry.ID) -> AlertPayload:
        async def work(session: UnitOfWork) -> AlertPayload:
            alert = await AlertService(session, info.context.principal).clear(parse_id(id))
            return AlertPayload(alert=Alert.from_row(alert))

        return await AlertPayload.of_work(info, work)

    @strawberry.mutation(description="Suppress the alerts of a site or account subtree for a while (operator, "
                                     "whole-tenant key).")
    async def create_maintenance_window(self, info: Info, input: MaintenanceWindowInput
                                        ) -> MaintenanceWindowPayload:
        async def work(session: UnitOfWork) -> MaintenanceWindowPayload:
            window = await AlertService(session, info.context.principal).create_maintenance_window(
                starts_at=input.starts_at, ends_at=input.ends_at, site=input.site_id, account=input.account_id,
                reason=input.reason)
            return MaintenanceWindowPayload(maintenance_window=MaintenanceWindow.from_row(window))

        return await MaintenanceWindowPayload.of_work(info, work)

    @strawberry.mutation(description="Delete a maintenance window (operator, whole-tenant key).")
    async def delete_maintenance_window(self, info: Info, id: strawberry.ID) -> DeletePayload:
        async def work(session: UnitOfWork) -> DeletePayload:
            await AlertService(session, info.context.principal).delete_maintenance_window(parse_id(id))
            return DeletePayload(deleted=True)

        return await DeletePayload.of_work(info, work)

    @strawberry.mutation(description="Change the tenant's monitoring settings (admin, whole-tenant key; audited). "
                                     "BAD_USER_INPUT names a value out of range; nothing changes then.")
    async def update_monitoring_settings(self, info: Info, input: MonitoringSettingsInput
                                         ) -> MonitoringSettingsPayload:
        overrides = input.severity_overrides

        async def work(session: UnitOfWork) -> MonitoringSettingsPayload:
            events = [o.event for o in overrides or ()]
            if len(set(events)) != len(events):  # a dict would silently keep the last one
                raise InvalidParameterError("each event may appear once in severityOverrides",
                                            parameter="severity_overrides")
            knobs = {name: getattr(input, name) for name in KNOBS if getattr(input, name) is not None}
            change = SettingsChange(knobs, severity_overrides=None if overrides is None
                                    else {o.event: o.severity for o in overrides})
            settings = await update_settings(session, info.context.principal, change)
            return MonitoringSettingsPayload(settings=MonitoringSettings.of(settings))

        return await MonitoringSettingsPayload.of_work(info, work)


__all__ = ["MonitoringMutation"]
