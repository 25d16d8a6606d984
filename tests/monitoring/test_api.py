"""Alerts over REST: viewers read (subtree keys their subtree only), operators acknowledge, clear and manage
maintenance windows; refusals are clear problems, never 500s."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from strawberry.utils.str_converters import to_camel_case

from service.cli_alerts import list_alerts_op
from service.core.errors import InvalidParameterError, NotFoundError
from service.core.principal import Principal
from service.db.models.api_key import Role
from service.db.models.audit import AuditEvent
from service.db.models.mirror import Site
from service.db.models.monitoring import AlertState, MonitoringSettings, Severity
from service.db.models.notifications import NotificationEvent, NotificationEventType
from service.jobs.enqueue import unit_of_work
from service.monitoring.repository import MonitoringRepository
from service.monitoring.settings import KNOBS, SettingsChange, update_settings
from service.runtime import Resources
from service.simulator import Simulator
from service.tenants.apikeys import prefix_of
from tests.conftest import http_client
from tests.monitoring.conftest import MonitorFactory, mirror, quiet_simulator
from tests.tenants.factories import TenantWithKey, committed_key, committed_tenant

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(app) as client:  # type: ignore[arg-type]
        yield client


async def _tenant_with_faults(resources: Resources, make_monitor: MonitorFactory) -> tuple[TenantWithKey, Simulator]:
    tenant = await committed_tenant(resources, Role.OPERATOR)
    sim = quiet_simulator(20)
    await mirror(resources, sim, tenant.tenant_id)
    monitor = make_monitor(sim)
    await monitor.cycle(tenant.tenant_id)
    visible = sim.fleet.devices_of(sim.fleet.named_accounts["company"])
    owners = {device.owner_id for device in visible}
    assert len(owners) > 1
    first_owner = min(owners)
    faulty = [next(d for d in visible if d.owner_id == first_owner), next(d for d in visible
                                                                             if d.owner_id != first_owner)]
    sim.inject_fault([faulty[0].serial], "Isolation fault", timedelta(hours=2))
    sim.inject_fault([faulty[1].serial], "Grid Under Voltage", timedelta(hours=2))
    sim.clock.advance(timedelta(minutes=5))
    await monitor.cycle(tenant.tenant_id)
    return tenant, sim


async def test_viewers_read_alerts_and_counts_operators_acknowledge_and_clear(
    client: httpx.AsyncClient, resources: Resources, make_monitor: MonitorFactory
) -> None:
    tenant, _ = await _tenant_with_faults(resources, make_monitor)
    viewer = {"Authorization": f"Bearer {await committed_key(resources, tenant.tenant_id, Role.VIEWER)}"}

    listed = await client.get("/api/v1/alerts", params={"state": "open"}, headers=viewer)
    assert listed.status_code == 200
    alerts = listed.json()["items"]
    assert sorted((a["event"], a["severity"]) for a in alerts) == [("Grid Under Voltage", "minor"),
                                                                   ("Isolation fault", "critical")]
    critical = next(a for a in alerts if a["severity"] == "critical")
    counts = await client.get("/api/v1/alerts/counts", params={"state": "open"}, headers=viewer)
    assert counts.json() == {"critical": 1, "major": 0, "minor": 1, "info": 0}
    only_critical = await client.get("/api/v1/alerts", params={"severity": "critical"}, headers=viewer)
    assert [a["id"] for a in only_critical.json()["items"]] == [critical["id"]]

    denied = await client.post(f"/api/v1/alerts/{critical['id']}/acknowledge", json={}, headers=viewer)
    assert denied.status_code == 403
    acknowledged = await client.post(f"/api/v1/alerts/{critical['id']}/acknowledge",
                                     json={"note": "engineer booked"}, headers=tenant.headers)
    assert acknowledged.status_code == 200
    assert acknowledged.json()["state"] == "acknowledged"
    assert acknowledged.json()["acknowledge_note"] == "engineer booked"
    assert acknowledged.json()["acknowledged_by"].startswith("apikey:")
    other_key = await committed_key(resources, tenant.tenant_id, Role.OPERATOR)
    other_operator = {"Authorization": f"Bearer {other_key}"}
    again = await client.post(f"/api/v1/alerts/{critical['id']}/acknowledge", headers=other_operator)
    assert again.status_code == 200, again.text
    first_acknowledgement = {field: acknowledged.json()[field]
                             for field in ("acknowledged_by", "acknowledged_at", "acknowledge_note")}
    assert {field: again.json()[field] for field in first_acknowledgement} == first_acknowledgement
    renoted = await client.post(f"/api/v1/alerts/{critical['id']}/acknowledge", json={"note": "parts ordered"},
                                headers=other_operator)
    assert renoted.json()["acknowledge_note"] == "parts ordered"
    assert renoted.json()["acknowledged_by"] == f"apikey:{prefix_of(other_key)}", "the new note is the other's"
    assert renoted.json()["acknowledged_at"] != first_acknowledgement["acknowledged_at"]
    kept = await client.post(f"/api/v1/alerts/{critical['id']}/acknowledge", headers=tenant.headers)
    assert {field: kept.json()[field] for field in first_acknowledgement} == {
        field: renoted.json()[field] for field in first_acknowledgement}, "no note: the last note's author stays"

    cleared = await client.post(f"/api/v1/alerts/{critical['id']}/clear", headers=tenant.headers)
    assert cleared.status_code == 200
    assert (cleared.json()["state"], cleared.json()["cleared_by"]) == ("cleared", acknowledged.json()[
        "acknowledged_by"])
    again = await client.post(f"/api/v1/alerts/{critical['id']}/clear", headers=tenant.headers)
    assert again.status_code == 409
    late = await client.post(f"/api/v1/alerts/{critical['id']}/acknowledge", json={}, headers=tenant.headers)
    assert late.status_code == 409
    unknown = await client.post("/api/v1/alerts/00000000-0000-0000-0000-000000000000/clear", headers=tenant.headers)
    assert unknown.status_code == 404

    async with resources.session_factory() as session:
        kinds = (await session.scalars(select(NotificationEvent.type).where(
            NotificationEvent.alert_id == critical["id"]))).all()
    assert sorted(kinds) == sorted([NotificationEventType.ALERT_RAISED, NotificationEventType.ALERT_ACKNOWLEDGED,
                                    NotificationEventType.ALERT_CLEARED])
    incidents = await client.get("/api/v1/incidents", params={"state": "open"}, headers=viewer)
    assert [i["summary"] for i in incidents.json()["items"]] == [
        f"site {alerts[0]['site_upstream_id'] if alerts[0]['severity'] == 'minor' else alerts[1]['site_upstream_id']}"
        ": 1 open alert on 1 inverter (minor): Grid Under Voltage"]
    inverted = {"since": "2026-06-02T00:00:00Z", "until": "2026-06-01T00:00:00Z"}
    naive = {"since": "2026-12-01T10:00:00"}
    for path in ("/api/v1/alerts", "/api/v1/alerts/counts", "/api/v1/incidents"):  # one answer for one mistake
        refused = await client.get(path, params=inverted, headers=viewer)
        assert refused.status_code == 400, path
        assert refused.json()["errors"] == [{"key": "until", "message": (
            "until (2026-06-01T00:00:00+00:00) is before since (2026-06-02T00:00:00+00:00); a range must not end "
            "before it starts")}], path
        refused = await client.get(path, params=naive, headers=viewer)
        assert refused.status_code == 400, path
        assert refused.json()["errors"] == [{"key": "since", "message": (
            "since must carry a timezone (e.g. 2026-06-01T12:00:00Z), got '2026-12-01T10:00:00'")}], path
    naive_in_graphql = (await client.post("/graphql", headers=viewer, json={
        "query": '{ alerts(filter: {since: "2026-12-01T10:00:00"}) { totalCount } }'})).json()
    assert [error["extensions"]["code"] for error in naive_in_graphql["errors"]] == ["BAD_USER_INPUT"]
    assert "since must carry a timezone" in naive_in_graphql["errors"][0]["message"]

    minor = next(a for a in alerts if a["severity"] == "minor")
    bodiless = await client.post(f"/api/v1/alerts/{minor['id']}/acknowledge", headers=tenant.headers)
    assert bodiless.status_code == 200, bodiless.text  # the note is optional, and so is the body
    assert (bodiless.json()["state"], bodiless.json()["acknowledge_note"]) == ("acknowledged", None)


async def test_a_subtree_key_sees_only_the_alerts_of_its_subtree(
    client: httpx.AsyncClient, resources: Resources, make_monitor: MonitorFactory
) -> None:
    tenant, sim = await _tenant_with_faults(resources, make_monitor)
    alerts = (await client.get("/api/v1/alerts", headers=tenant.headers)).json()["items"]
    owner = sim.fleet.by_serial[alerts[0]["inverter_serial"]].owner_id
    restricted = await committed_key(resources, tenant.tenant_id, Role.OPERATOR, restricted_account_id=str(owner))
    headers = {"Authorization": f"Bearer {restricted}"}

    seen = (await client.get("/api/v1/alerts", headers=headers)).json()
    assert [a["id"] for a in seen["items"]] == [alerts[0]["id"]]
    assert seen["total_count"] == 1
    other = alerts[1]["id"]
    assert (await client.post(f"/api/v1/alerts/{other}/clear", headers=headers)).status_code == 404
    window = await client.post("/api/v1/maintenance-windows", headers=headers, json={
        "site_id": 1, "starts_at": "2026-06-01T12:00:00Z", "ends_at": "2026-06-01T14:00:00Z"})
    assert window.status_code == 403


async def test_operators_manage_maintenance_windows_and_bad_input_is_refused_clearly(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    tenant = await committed_tenant(resources, Role.OPERATOR)
    sim = quiet_simulator(6)
    await mirror(resources, sim, tenant.tenant_id)
    async with resources.session_factory() as session:
        site = (await session.scalars(select(Site.upstream_id).where(Site.tenant_id == tenant.tenant_id))).first()
    created = await client.post("/api/v1/maintenance-windows", headers=tenant.headers, json={
        "site_id": site, "starts_at": "2999-06-01T12:00:00Z", "ends_at": "2999-06-01T14:00:00Z", "reason": "panels"})
    assert created.status_code == 201, created.text
    listed = await client.get("/api/v1/maintenance-windows", headers=tenant.headers)
    assert [w["id"] for w in listed.json()] == [created.json()["id"]]

    for body, detail in (
        ({"starts_at": "2999-06-01T12:00:00Z", "ends_at": "2999-06-01T14:00:00Z"},
         "a window needs a site or an account"),
        ({"site_id": 7, "account_id": 3, "starts_at": "2999-06-01T12:00:00Z", "ends_at": "2999-06-01T14:00:00Z"},
         "give either a site or an account, not both"),
        ({"site_id": 7, "starts_at": "2999-06-01T14:00:00Z", "ends_at": "2999-06-01T12:00:00Z"},
         "the window must end after it starts"),
    ):
        refused = await client.post("/api/v1/maintenance-windows", headers=tenant.headers, json=body)
        assert refused.status_code == 422, body
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["detail"] == detail

    window = {"starts_at": "2999-06-01T12:00:00Z", "ends_at": "2999-06-01T14:00:00Z"}
    for field, value, status, message in (
        ("site_id", 999999, 422, "the tenant has no site 999999 (sync its fleet first, or check the id)"),
        ("account_id", 999999, 422, "the tenant has no account 999999 (sync its fleet first, or check the id)"),
        ("site_id", 0, 400, f"site_id must be an integer from 1 to {2**53}, got 0"),
        ("account_id", -3, 400, f"account_id must be an integer from 1 to {2**53}, got -3"),
    ):
        refused = await client.post("/api/v1/maintenance-windows", headers=tenant.headers,
                                    json={**window, field: value})
        assert refused.status_code == status, refused.text
        assert refused.json()["errors"] == [{"key": field, "message": message}]
        graphql = (await client.post("/graphql", headers=tenant.headers, json={
            "query": "mutation($input: MaintenanceWindowInput!) { createMaintenanceWindow(input: $input) { "
                     "maintenanceWindow { id } errors { field message } } }",
            "variables": {"input": {"startsAt": window["starts_at"], "endsAt": window["ends_at"],
                                    to_camel_case(field): value}}})).json()
        assert graphql["data"]["createMaintenanceWindow"] == {
            "maintenanceWindow": None, "errors": [{"field": to_camel_case(field), "message": message}]}
    assert len((await client.get("/api/v1/maintenance-windows", headers=tenant.headers)).json()) == 1

    deleted = await client.delete(f"/api/v1/maintenance-windows/{created.json()['id']}", headers=tenant.headers)
    assert deleted.status_code == 204
    assert (await client.get("/api/v1/maintenance-windows", headers=tenant.headers)).json() == []
    missing = await client.delete(f"/api/v1/maintenance-windows/{created.json()['id']}", headers=tenant.headers)
    assert missing.status_code == 404


async def test_the_alerts_command_lists_a_tenants_open_alerts(resources: Resources,
                                                              make_monitor: MonitorFactory) -> None:
    tenant, _ = await _tenant_with_faults(resources, make_monitor)
    alerts, total = await list_alerts_op(resources, tenant.slug, [AlertState.OPEN])
    assert total == 2
    assert sorted(a.event for a in alerts) == ["Grid Under Voltage", "Isolation fault"]
    assert await list_alerts_op(resources, tenant.slug, [AlertState.CLEARED]) == ([], 0)
    with pytest.raises(NotFoundError):
        await list_alerts_op(resources, "no-such-tenant")


async def test_graphql_alerts_with_counts_and_the_acknowledge_mutation(
    client: httpx.AsyncClient, resources: Resources, make_monitor: MonitorFactory
) -> None:
    tenant, _ = await _tenant_with_faults(resources, make_monitor)
    viewer = {"Authorization": f"Bearer {await committed_key(resources, tenant.tenant_id, Role.VIEWER)}"}
    query = """{ alerts(filter: {states: [OPEN], severities: [CRITICAL]}) { totalCount
                 edges { node { id event severity state } } countsBySeverity { severity count } } }"""
    answer = (await client.post("/graphql", json={"query": query}, headers=viewer)).json()
    alerts = answer["data"]["alerts"]
    assert alerts["totalCount"] == 1
    (edge,) = alerts["edges"]
    assert (edge["node"]["event"], edge["node"]["state"]) == ("Isolation fault", "OPEN")
    assert {c["severity"]: c["count"] for c in alerts["countsBySeverity"]} == {
        "CRITICAL": 1, "MAJOR": 0, "MINOR": 0, "INFO": 0}

    mutation = "mutation($id: ID!) { acknowledgeAlert(id: $id, note: \"on it\") { alert { state acknowledgeNote } " \
               "errors { code } } }"
    refused = (await client.post("/graphql", json={"query": mutation, "variables": {"id": edge["node"]["id"]}},
                                 headers=viewer)).json()
    assert refused["data"]["acknowledgeAlert"] == {"alert": None, "errors": [{"code": "FORBIDDEN"}]}
    done = (await client.post("/graphql", json={"query": mutation, "variables": {"id": edge["node"]["id"]}},
                              headers=tenant.headers)).json()
    assert done["data"]["acknowledgeAlert"] == {"alert": {"state": "ACKNOWLEDGED", "acknowledgeNote": "on it"},
                                                "errors": []}
    without_note = "mutation($id: ID!) { acknowledgeAlert(id: $id) { alert { acknowledgeNote } errors { code } } }"
    again = (await client.post("/graphql", json={"query": without_note, "variables": {"id": edge["node"]["id"]}},
                               headers=tenant.headers)).json()
    assert again["data"]["acknowledgeAlert"] == {"alert": {"acknowledgeNote": "on it"}, "errors": []}
    incidents = (await client.post("/graphql", json={"query": "{ incidents(filter: {states: [OPEN]}) { totalCount "
                                                              "edges { node { severity summary } } } }"},
                                   headers=viewer)).json()
    assert incidents["data"]["incidents"]["totalCount"] == 2
    summary = (await client.post("/graphql", json={"query": "{ fleetSummary { total openAlertsBySeverity "
                                                            "{ severity count } } }"}, headers=viewer)).json()
    assert {c["severity"]: c["count"] for c in summary["data"]["fleetSummary"]["openAlertsBySeverity"]} == {
        "CRITICAL": 1, "MAJOR": 0, "MINOR": 1, "INFO": 0}  # the acknowledged alert is still not cleared


async def test_graphql_inverter_alerts_and_site_incident(
    client: httpx.AsyncClient, resources: Resources, make_monitor: MonitorFactory
) -> None:
    tenant, sim = await _tenant_with_faults(resources, make_monitor)
    query = """{ inverters(first: 100) { edges { node { serial
                   open: alerts(states: [OPEN]) { event severity state }
                   minor: alerts(severities: [MINOR]) { event }
                   site { upstreamId incident { severity summary } } } } } }"""

    async def fleet(headers: dict[str, str]) -> dict[str, dict[str, object]]:
        answer = (await client.post("/graphql", json={"query": query}, headers=headers)).json()
        assert "errors" not in answer
        return {edge["node"]["serial"]: edge["node"] for edge in answer["data"]["inverters"]["edges"]}

    seen = await fleet(tenant.headers)
    faulty = {serial: node for serial, node in seen.items() if node["open"]}
    assert sorted((node["open"][0]["event"], node["open"][0]["severity"]) for node in faulty.values()) == [
        ("Grid Under Voltage", "MINOR"), ("Isolation fault", "CRITICAL")]
    assert sorted(event["event"] for node in seen.values() for event in node["minor"]) == ["Grid Under Voltage"]
    for node in faulty.values():
        incident = node["site"]["incident"]  # type: ignore[index]
        assert incident["summary"].startswith(f"site {node['site']['upstreamId']}: 1 open alert")  # type: ignore[index]
        assert incident["severity"] == node["open"][0]["severity"]  # type: ignore[index]
    sites_with_faults = {node["site"]["upstreamId"] for node in faulty.values()}  # type: ignore[index]
    assert all(node["site"]["incident"] is None for node in seen.values()  # type: ignore[index]
               if node["site"]["upstreamId"] not in sites_with_faults)  # type: ignore[index]

    # A subtree key sees its own inverter's alert and site incident, nothing of the other subtree.
    mine = next(iter(faulty))
    owner = sim.fleet.by_serial[mine].owner_id
    restricted = await committed_key(resources, tenant.tenant_id, Role.VIEWER, restricted_account_id=str(owner))
    scoped = await fleet({"Authorization": f"Bearer {restricted}"})
    assert [serial for serial, node in scoped.items() if node["open"]] == [mine]
    assert [node["site"]["incident"] is not None for serial, node in scoped.items()  # type: ignore[index]
            if serial == mine] == [True]


async def test_admins_change_the_monitoring_settings_the_monitor_reads_and_bad_values_are_refused(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    tenant = await committed_tenant(resources, Role.ADMIN)
    viewer = {"Authorization": f"Bearer {await committed_key(resources, tenant.tenant_id, Role.VIEWER)}"}
    defaults = await client.get("/api/v1/monitoring/settings", headers=viewer)
    assert defaults.status_code == 200
    assert defaults.json() == {"enabled": True, "sweep_interval_seconds": 300, "grace_seconds": 1800,
                               "flap_window_seconds": 3600, "storm_share": 0.2, "severity_overrides": {}}

    changed = await client.patch("/api/v1/monitoring/settings", headers=tenant.headers, json={
        "sweep_interval_seconds": 600, "storm_share": 0.5, "severity_overrides": {"Isolation fault": "minor"}})
    assert changed.status_code == 200
    assert (changed.json()["sweep_interval_seconds"], changed.json()["grace_seconds"]) == (600, 1800)
    async with resources.session_factory() as session:  # what the monitor reads
        repo = MonitoringRepository(session, tenant.tenant_id)
        row = await repo.settings()
        assert (row.sweep_interval_seconds, row.storm_share) == (600, 0.5)
        assert await repo.overrides() == {"Isolation fault": Severity.MINOR}
        audit = (await session.scalars(select(AuditEvent).where(
            AuditEvent.tenant_id == tenant.tenant_id, AuditEvent.action == "monitoring.settings.write"))).one()
    assert audit.details["changed"] == {"sweep_interval_seconds": {"from": 300, "to": 600},
                                        "storm_share": {"from": 0.2, "to": 0.5},
                                        "severity_overrides": {"from": {}, "to": {"Isolation fault": "minor"}}}

    refusals = [({"sweep_interval_seconds": 10}, "sweep_interval_seconds"), ({"storm_share": 0}, "storm_share"),
                ({"grace_seconds": 10**9}, "grace_seconds"),
                ({"severity_overrides": {"bad\u0000name": "major"}}, "severity_overrides"),
                ({"severity_overrides": {" Isolation fault": "major"}}, "severity_overrides"),
                ({"storm_share": 0.005}, "storm_share"), ({"storm_share": True}, "storm_share"),
                ({"storm_share": "0.5"}, "storm_share"), ({"sweep_interval_seconds": True}, "sweep_interval_seconds"),
                ({"enabled": None}, "enabled")]
    for body, field in refusals:
        refused = await client.patch("/api/v1/monitoring/settings", headers=tenant.headers, json=body)
        assert refused.status_code == 400, body
        assert [error["key"] for error in refused.json()["errors"]] == [field], body
    for body, message in (({"storm_share": True}, "storm_share must be a JSON number, not true"),
                          ({"sweep_interval_seconds": "60"}, 'sweep_interval_seconds must be a JSON integer, not "60"'),
                          ({"enabled": 1}, "enabled must be a JSON boolean, not 1")):
        refused = await client.patch("/api/v1/monitoring/settings", headers=tenant.headers, json=body)
        assert [error["message"] for error in refused.json()["errors"]] == [message]
    for body, message in (({"sweep_interval_seconds": 10}, "sweep_interval_seconds must be from 60 to 86400 seconds, "
                                                            "got 10"),
                          ({"flap_window_seconds": -1}, "flap_window_seconds must be from 0 to 604800 seconds, got -1"),
                          ({"storm_share": 0.005}, "storm_share must be from 0.01 to 1 (a share of the fleet), got "
                                                   "0.005"),
                          ({"storm_share": 0}, "storm_share must be from 0.01 to 1 (a share of the fleet), got 0")):
        refused = await client.patch("/api/v1/monitoring/settings", headers=tenant.headers, json=body)
        assert refused.json()["detail"] == message
    unknown = await client.patch("/api/v1/monitoring/settings", headers=tenant.headers, json={"interval": 5})
    assert unknown.status_code == 400
    assert (await client.get("/api/v1/monitoring/settings", headers=viewer)).json() == changed.json()  # unchanged

    mutation = """mutation { updateMonitoringSettings(input: {graceSeconds: 3600, stormShare: null,
                  severityOverrides: []}) {
                  settings { graceSeconds sweepIntervalSeconds stormShare severityOverrides { event } }
                  errors { code field } } }"""
    done = (await client.post("/graphql", json={"query": mutation}, headers=tenant.headers)).json()
    assert done["data"]["updateMonitoringSettings"] == {"settings": {  # null keeps a value, as omitting it does
        "graceSeconds": 3600, "sweepIntervalSeconds": 600, "stormShare": 0.5, "severityOverrides": []}, "errors": []}
    bad = (await client.post("/graphql", json={"query": "mutation { updateMonitoringSettings(input: "
                                                        "{stormShare: 1.5}) { settings { stormShare } "
                                                        "errors { code field } } }"}, headers=tenant.headers)).json()
    assert bad["data"]["updateMonitoringSettings"]["settings"] is None
    assert [e["field"] for e in bad["data"]["updateMonitoringSettings"]["errors"]] == ["stormShare"]
    twice = (await client.post("/graphql", json={"query": """mutation { updateMonitoringSettings(input: {
        severityOverrides: [{event: "Isolation fault", severity: MINOR}, {event: "Isolation fault", severity: MAJOR}]})
        { settings { stormShare } errors { code field } } }"""}, headers=tenant.headers)).json()
    assert twice["data"]["updateMonitoringSettings"] == {
        "settings": None, "errors": [{"code": "BAD_USER_INPUT", "field": "severityOverrides"}]}
    read = (await client.post("/graphql", json={"query": "{ monitoringSettings { stormShare graceSeconds } }"},
                              headers=viewer)).json()
    assert read["data"]["monitoringSettings"] == {"stormShare": 0.5, "graceSeconds": 3600}


async def test_rest_and_graphql_describe_each_monitoring_setting_alike_and_rest_patches_each(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    tenant = await committed_tenant(resources, Role.VIEWER)
    schemas = (await client.get("/schema/openapi.json")).json()["components"]["schemas"]
    rest = {to_camel_case(name): field.get("description")
            for name, field in schemas["MonitoringSettingsBody"]["properties"].items() if name in KNOBS}
    query = '{ __type(name: "MonitoringSettings") { fields { name description } } }'
    fields = (await client.post("/graphql", json={"query": query}, headers=tenant.headers)).json()["data"]
    graphql = {field["name"]: field["description"] for field in fields["__type"]["fields"] if field["name"] in rest}
    assert graphql == rest
    query = '{ __type(name: "MonitoringSettingsInput") { inputFields { name description } } }'
    fields = (await client.post("/graphql", json={"query": query}, headers=tenant.headers)).json()["data"]
    assert {field["name"]: field["description"] for field in fields["__type"]["inputFields"]
            if field["name"] in rest} == rest  # what one changes is described as what one reads
    assert rest["graceSeconds"] == "An inverter not seen for longer is 'Communication lost' (default 1800)."
    # Every setting one reads can be changed (the REST patch lists the knobs again).
    patch, body = schemas["MonitoringSettingsPatch"], schemas["MonitoringSettingsBody"]
    assert patch["properties"].keys() == body["properties"].keys()


async def test_every_settings_column_but_the_sweep_times_is_a_knob_both_apis_show() -> None:
    # A column added to the ORM model but not to MonitoringKnobs would be stored, never shown nor changeable.
    columns = set(MonitoringSettings.__table__.columns.keys()) - {"tenant_id", "next_sweep_at", "last_sweep_at"}
    assert set(KNOBS) == columns


async def test_a_settings_change_naming_no_knob_is_refused_and_changes_nothing(resources: Resources) -> None:
    tenant = await committed_tenant(resources, Role.ADMIN)
    with pytest.raises(InvalidParameterError, match="there is no monitoring setting 'tenant_id'") as refused:
        async with unit_of_work(resources.session_factory, resources.redis) as session:
            await update_settings(session, Principal.cli(tenant.tenant_id),
                                  SettingsChange({"grace_seconds": 600, "tenant_id": uuid.uuid4()}))
    assert refused.value.parameter == "tenant_id"
    async with resources.session_factory() as session:
        assert (await MonitoringRepository(session, tenant.tenant_id).settings()).grace_seconds == 1800


async def test_a_settings_change_to_no_value_is_refused_and_changes_nothing(resources: Resources) -> None:
    tenant = await committed_tenant(resources, Role.ADMIN)
    with pytest.raises(InvalidParameterError, match="enabled must have a value") as refused:
        async with unit_of_work(resources.session_factory, resources.redis) as session:
            await update_settings(session, Principal.cli(tenant.tenant_id),
                                  SettingsChange({"grace_seconds": 600, "enabled": None}))
    assert refused.value.parameter == "enabled"
    async with resources.session_factory() as session:
        assert (await MonitoringRepository(session, tenant.tenant_id).settings()).grace_seconds == 1800


async def test_concurrent_settings_changes_apply_one_after_the_other(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    tenant = await committed_tenant(resources, Role.ADMIN)
    writes = [{"storm_share": round(0.3 + i / 100, 2), "severity_overrides": {"Isolation fault": "minor",
                                                                               f"Event {i}": "major"}}
              for i in range(8)]
    answers = await asyncio.gather(*(client.patch("/api/v1/monitoring/settings", headers=tenant.headers, json=body)
                                     for body in writes))
    assert [answer.status_code for answer in answers] == [200] * len(writes)  # no unique violation, no 500
    final = (await client.get("/api/v1/monitoring/settings", headers=tenant.headers)).json()
    assert {key: final[key] for key in ("storm_share", "severity_overrides")} in writes
    async with resources.session_factory() as session:
        audits = (await session.scalars(select(AuditEvent).where(
            AuditEvent.tenant_id == tenant.tenant_id, AuditEvent.action == "monitoring.settings.write"))).all()
    shares = [audit.details["changed"]["storm_share"] for audit in audits]
    # Each change saw the one before it: the from-values are the default and every write but the last one.
    assert sorted(share["from"] for share in shares) == sorted(
        [0.2] + [write["storm_share"] for write in writes if write["storm_share"] != final["storm_share"]])
