"""Every protected operation, over REST and GraphQL, as every kind of caller (see tests/policy_matrix.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.clock import utcnow
from service.core.errors import PermissionDeniedError
from service.core.principal import Principal
from service.core.roles import Role
from service.db.models.campaign import CampaignState
from service.db.models.mirror import Site, SyncKind
from service.db.models.monitoring import Alert, AlertState, Severity
from service.mirror.service import MirrorService
from service.policy import Action
from service.runtime import Resources
from service.simulator import Simulator
from tests.campaigns.factories import fresh_campaign, fresh_firmware_watch, fresh_subtree_inverter
from tests.conftest import http_client
from tests.policy_matrix import (
    CALLERS,
    SUBTREE_ACCOUNT,
    Case,
    Outcome,
    World,
    build_world,
    graphql_outcome,
    rest_outcome,
)
from tests.tenants.factories import clear_auth_failures, make_tenant, quiet_simulator, simulator_route

pytestmark = pytest.mark.usefixtures("clean_db")

WRITERS = frozenset({"admin"})
OPERATORS = frozenset({"operator", "admin"})
OUTSIDE_SUBTREE = {"subtree_admin": Outcome.NOT_FOUND}


async def rest_request_sync(world: World, caller: str) -> Outcome:
    return rest_outcome(await world.client.post("/api/v1/sync-runs", json={"kind": "refresh"},
                                                headers=world.headers(caller)))


async def graphql_request_sync(world: World, caller: str) -> Outcome:
    answer = await world.graphql(caller, "mutation { requestSync(kind: REFRESH) { jobId errors { code } } }", {})
    return graphql_outcome(answer, "requestSync")


async def rest_add_credential(world: World, caller: str) -> Outcome:
    return rest_outcome(await world.client.post("/api/v1/credentials", json={"token": "t-new", "check": False},
                                                headers=world.headers(caller)))


async def rest_check_credential(world: World, caller: str) -> Outcome:
    target = await world.fresh_credential()
    return rest_outcome(await world.client.post(f"/api/v1/credentials/{target}/check",
                                                headers=world.headers(caller)))


async def graphql_check_credential(world: World, caller: str) -> Outcome:
    target = await world.fresh_credential()
    answer = await world.graphql(caller, "mutation($id: ID!) { checkCredential(id: $id) { errors { code } } }",
                                 {"id": str(target)})
    return graphql_outcome(answer, "checkCredential")


async def rest_remove_credential(world: World, caller: str) -> Outcome:
    target = await world.fresh_credential()
    return rest_outcome(await world.client.delete(f"/api/v1/credentials/{target}", headers=world.headers(caller)))


async def rest_create_api_key(world: World, caller: str) -> Outcome:
    return rest_outcome(await world.client.post("/api/v1/api-keys", json={"name": "new", "role": "viewer"},
                                                headers=world.headers(caller)))


async def graphql_create_api_key(world: World, caller: str) -> Outcome:
    answer = await world.graphql(caller, 'mutation { createApiKey(input: {name: "new", role: VIEWER}) '
                                         "{ secret errors { code } } }", {})
    return graphql_outcome(answer, "createApiKey")


async def rest_revoke_api_key(world: World, caller: str) -> Outcome:
    target = await world.fresh_api_key()
    return rest_outcome(await world.client.post(f"/api/v1/api-keys/{target}/revoke", headers=world.headers(caller)))


async def graphql_revoke_api_key(world: World, caller: str) -> Outcome:
    target = await world.fresh_api_key()
    answer = await world.graphql(caller, "mutation($id: ID!) { revokeApiKey(id: $id) { errors { code } } }",
                                 {"id": str(target)})
    return graphql_outcome(answer, "revokeApiKey")


async def _fresh_alert(world: World) -> str:
    """A new open alert of the home tenant, on an inverter outside the subtree key's subtree."""
    async with world.resources.session_factory() as session, session.begin():
        alert = Alert(tenant_id=world.tenant_id, inverter_serial=f"INV{uuid.uuid4().hex[:8]}", event="PV Over Voltage",
                      severity=Severity.MAJOR, state=AlertState.OPEN, first_seen_at=utcnow(), last_seen_at=utcnow(),
                      last_started_at=utcnow(), occurrences=1, flaps=0, suppressed=False)
        session.add(alert)
        await session.flush()
        return str(alert.id)


async def rest_acknowledge_alert(world: World, caller: str) -> Outcome:
    target = await _fresh_alert(world)
    return rest_outcome(await world.client.post(f"/api/v1/alerts/{target}/acknowledge", json={},
                                                headers=world.headers(caller)))


async def rest_clear_alert(world: World, caller: str) -> Outcome:
    target = await _fresh_alert(world)
    return rest_outcome(await world.client.post(f"/api/v1/alerts/{target}/clear", headers=world.headers(caller)))


async def graphql_acknowledge_alert(world: World, caller: str) -> Outcome:
    target = await _fresh_alert(world)
    answer = await world.graphql(caller, "mutation($id: ID!) { acknowledgeAlert(id: $id) { errors { code } } }",
                                 {"id": target})
    return graphql_outcome(answer, "acknowledgeAlert")


async def graphql_clear_alert(world: World, caller: str) -> Outcome:
    target = await _fresh_alert(world)
    answer = await world.graphql(caller, "mutation($id: ID!) { clearAlert(id: $id) { errors { code } } }",
                                 {"id": target})
    return graphql_outcome(answer, "clearAlert")


async def _mirrored_site(world: World) -> int:
    """A new site of both tenants' mirrors (a maintenance window must name a site of the caller's tenant; the
    other tenant's admin acts on its own fleet)."""
    now, upstream_id = utcnow(), uuid.uuid4().int % 10**9 + 1
    async with world.resources.session_factory() as session, session.begin():
        session.add_all(Site(id=uuid.uuid4(), tenant_id=tenant_id, upstream_id=upstream_id, products=[],
                             first_seen_at=now, last_seen_at=now, changed_at=now)
                        for tenant_id in (world.tenant_id, world.other_tenant_id))
    return upstream_id


async def graphql_create_maintenance_window(world: World, caller: str) -> Outcome:
    answer = await world.graphql(caller, "mutation($site: Int!) { createMaintenanceWindow(input: {siteId: $site, "
                                         'startsAt: "2026-06-01T12:00:00Z", endsAt: "2026-06-01T14:00:00Z"}) '
                                         "{ errors { code } } }", {"site": await _mirrored_site(world)})
    return graphql_outcome(answer, "createMaintenanceWindow")


async def rest_create_maintenance_window(world: World, caller: str) -> Outcome:
    return rest_outcome(await world.client.post("/api/v1/maintenance-windows", headers=world.headers(caller), json={
        "site_id": await _mirrored_site(world), "starts_at": "2026-06-01T12:00:00Z",
        "ends_at": "2026-06-01T14:00:00Z"}))

async def rest_create_notification_channel(world: World, caller: str) -> Outcome:
    return rest_outcome(await world.client.post("/api/v1/notifications/channels", headers=world.headers(caller),
                                                json={"kind": "webhook", "name": f"hook-{uuid.uuid4().hex[:8]}",
                                                      "url": "https://hooks.example.com/in"}))


async def graphql_create_notification_channel(world: World, caller: str) -> Outcome:
    answer = await world.graphql(caller, "mutation($name: String!) { createNotificationChannel(input: {kind: WEBHOOK, "
                                         'name: $name, url: "https://hooks.example.com/in"}) { errors { code } } }',
                                 {"name": f"hook-{uuid.uuid4().hex[:8]}"})
    return graphql_outcome(answer, "createNotificationChannel")


def _rest_on_notification(path: str, target: Callable[[World], Awaitable[uuid.UUID]]
                          ) -> Callable[[World, str], Awaitable[Outcome]]:
    async def call(world: World, caller: str) -> Outcome:
        url = f"/api/v1/notifications/{path.format(id=await target(world))}"
        return rest_outcome(await world.client.post(url, headers=world.headers(caller)))

    return call


def _graphql_on_notification(mutation: str, argument: str, target: Callable[[World], Awaitable[uuid.UUID]]
                             ) -> Callable[[World, str], Awaitable[Outcome]]:
    async def call(world: World, caller: str) -> Outcome:
        answer = await world.graphql(caller, f"mutation($id: ID!) {{ {mutation}({argument}: $id) "
                                             "{ errors { code } } }", {"id": str(await target(world))})
        return graphql_outcome(answer, mutation)

    return call


def _channel(world: World) -> Awaitable[uuid.UUID]:
    return world.fresh_notification_channel()


def _message(world: World) -> Awaitable[uuid.UUID]:
    return world.fresh_notification_message()


async def rest_update_monitoring_settings(world: World, caller: str) -> Outcome:
    return rest_outcome(await world.client.patch("/api/v1/monitoring/settings", headers=world.headers(caller),
                                                 json={"grace_seconds": 2400}))


async def graphql_update_monitoring_settings(world: World, caller: str) -> Outcome:
    answer = await world.graphql(caller, "mutation { updateMonitoringSettings(input: {graceSeconds: 2400}) "
                                         "{ errors { code } } }", {})
    return graphql_outcome(answer, "updateMonitoringSettings")


async def _campaign(world: World, state: CampaignState) -> str:
    # Made within the subtree key's subtree, so that key sees it (whole-tenant keys see every campaign).
    return str(await fresh_campaign(world.resources, world.tenant_id, state,
                                    restricted_account_id=int(SUBTREE_ACCOUNT)))


async def rest_plan_campaign(world: World, caller: str) -> Outcome:
    spec = {"name": "matrix", "setting_id": 71, "value": 10}
    return rest_outcome(await world.client.post("/api/v1/campaigns/?dry_run=true", json=spec,
                                                headers=world.headers(caller)))


async def graphql_plan_campaign(world: World, caller: str) -> Outcome:
    answer = await world.graphql(caller, "mutation($input: CampaignInput!) { createCampaign(input: $input, "
                                         "dryRun: true) { plan errors { code } } }",
                                 {"input": {"name": "matrix", "settingId": 71, "value": "10"}})
    return graphql_outcome(answer, "createCampaign")


CAMPAIGN_ACTIONS = {  # action -> (REST path, GraphQL mutation, the state it acts from)
    Action.CAMPAIGN_APPROVE: ("approve", "approveCampaign", CampaignState.PLANNED),
    Action.CAMPAIGN_START: ("start", "startCampaign", CampaignState.PLANNED),
    Action.CAMPAIGN_PAUSE: ("pause", "pauseCampaign", CampaignState.RUNNING),
    Action.CAMPAIGN_RESUME: ("resume", "resumeCampaign", CampaignState.PAUSED),
    Action.CAMPAIGN_CANCEL: ("cancel", "cancelCampaign", CampaignState.RUNNING),
    Action.CAMPAIGN_ROLLBACK: ("rollback", "rollbackCampaign", CampaignState.COMPLETED),
}


def _rest_campaign_action(action: Action) -> Callable[[World, str], Awaitable[Outcome]]:
    path, _, state = CAMPAIGN_ACTIONS[action]

    async def call(world: World, caller: str) -> Outcome:
        target = await _campaign(world, state)
        return rest_outcome(await world.client.post(f"/api/v1/campaigns/{target}/{path}",
                                                    headers=world.headers(caller)))

    return call


def _graphql_campaign_action(action: Action) -> Callable[[World, str], Awaitable[Outcome]]:
    _, mutation, state = CAMPAIGN_ACTIONS[action]

    async def call(world: World, caller: str) -> Outcome:
        target = await _campaign(world, state)
        answer = await world.graphql(caller, f"mutation($id: ID!) {{ {mutation}(id: $id) {{ errors {{ code }} }} }}",
                                     {"id": target})
        return graphql_outcome(answer, mutation)

    return call


SUBTREE_OPERATORS = OPERATORS | {"subtree_admin"}  # campaigns are scoped to the key's subtree, not tenant-wide
CAMPAIGN_CASES = [
    Case("rest POST campaigns?dry_run", Action.CAMPAIGN_CREATE, "rest", SUBTREE_OPERATORS, rest_plan_campaign,
         targets_an_object=False),
    Case("graphql createCampaign(dryRun)", Action.CAMPAIGN_CREATE, "graphql", SUBTREE_OPERATORS,
         graphql_plan_campaign, targets_an_object=False),
    *(Case(f"rest POST campaigns/{{id}}/{CAMPAIGN_ACTIONS[action][0]}", action, "rest",
           frozenset({"admin", "subtree_admin"}) if action is Action.CAMPAIGN_APPROVE else SUBTREE_OPERATORS,
           _rest_campaign_action(action)) for action in CAMPAIGN_ACTIONS),
    *(Case(f"graphql {CAMPAIGN_ACTIONS[action][1]}", action, "graphql",
           frozenset({"admin", "subtree_admin"}) if action is Action.CAMPAIGN_APPROVE else SUBTREE_OPERATORS,
           _graphql_campaign_action(action)) for action in CAMPAIGN_ACTIONS),
]

WATCH_SPEC = {"name": "matrix", "model": "GIV-HY5.0", "target_firmware_arm": 500}


async def _cohort(world: World) -> None:
    # An inverter in the subtree key's subtree, and one in the other tenant (whose admin acts on its own fleet):
    # every allowed caller's cohort has a member.
    for tenant_id in (world.tenant_id, world.other_tenant_id):
        await fresh_subtree_inverter(world.resources, tenant_id, int(SUBTREE_ACCOUNT))


async def rest_create_firmware_watch(world: World, caller: str) -> Outcome:
    await _cohort(world)
    return rest_outcome(await world.client.post("/api/v1/firmware-watches/", json=WATCH_SPEC,
                                                headers=world.headers(caller)))


async def graphql_create_firmware_watch(world: World, caller: str) -> Outcome:
    await _cohort(world)
    answer = await world.graphql(caller, "mutation($input: FirmwareWatchInput!) { createFirmwareWatch(input: "
                                         "$input) { errors { code } } }",
                                 {"input": {"name": "matrix", "model": "GIV-HY5.0", "targetFirmwareArm": 500}})
    return graphql_outcome(answer, "createFirmwareWatch")


async def _watch(world: World) -> str:
    # Each call restarts its own straggler (a second restart of the same inverter is a conflict).
    return str(await fresh_firmware_watch(world.resources, world.tenant_id,
                                          restricted_account_id=int(SUBTREE_ACCOUNT)))


async def rest_restart_stragglers(world: World, caller: str) -> Outcome:
    target = await _watch(world)
    return rest_outcome(await world.client.post(f"/api/v1/firmware-watches/{target}/restart-stragglers",
                                                headers=world.headers(caller)))


async def graphql_restart_stragglers(world: World, caller: str) -> Outcome:
    target = await _watch(world)
    answer = await world.graphql(caller, "mutation($id: ID!) { restartFirmwareWatchStragglers(id: $id) "
                                         "{ errors { code } } }", {"id": target})
    return graphql_outcome(answer, "restartFirmwareWatchStragglers")


FIRMWARE_WATCH_CASES = [
    Case("rest POST firmware-watches", Action.FIRMWARE_WATCH_CREATE, "rest", SUBTREE_OPERATORS,
         rest_create_firmware_watch, targets_an_object=False),
    Case("graphql createFirmwareWatch", Action.FIRMWARE_WATCH_CREATE, "graphql", SUBTREE_OPERATORS,
         graphql_create_firmware_watch, targets_an_object=False),
    Case("rest POST firmware-watches/{id}/restart-stragglers", Action.FIRMWARE_WATCH_RESTART, "rest",
         SUBTREE_OPERATORS, rest_restart_stragglers),
    Case("graphql restartFirmwareWatchStragglers", Action.FIRMWARE_WATCH_RESTART, "graphql", SUBTREE_OPERATORS,
         graphql_restart_stragglers),
]

CASES = [
    Case("rest POST sync-runs", Action.SYNC_REQUEST, "rest", OPERATORS, rest_request_sync, targets_an_object=False),
    Case("graphql requestSync", Action.SYNC_REQUEST, "graphql", OPERATORS, graphql_request_sync,
         targets_an_object=False),
    Case("rest POST credentials", Action.CREDENTIAL_ADD, "rest", WRITERS, rest_add_credential,
         targets_an_object=False),
    Case("rest POST credentials/{id}/check", Action.CREDENTIAL_CHECK, "rest", WRITERS, rest_check_credential),
    Case("graphql checkCredential", Action.CREDENTIAL_CHECK, "graphql", WRITERS, graphql_check_credential),
    Case("rest DELETE credentials/{id}", Action.CREDENTIAL_REMOVE, "rest", WRITERS, rest_remove_credential),
    Case("rest POST api-keys", Action.APIKEY_CREATE, "rest", WRITERS, rest_create_api_key, targets_an_object=False),
    Case("graphql createApiKey", Action.APIKEY_CREATE, "graphql", WRITERS, graphql_create_api_key,
         targets_an_object=False),
    Case("rest POST api-keys/{id}/revoke", Action.APIKEY_REVOKE, "rest", WRITERS, rest_revoke_api_key),
    Case("graphql revokeApiKey", Action.APIKEY_REVOKE, "graphql", WRITERS, graphql_revoke_api_key),
    # a subtree key may act on the alerts of its subtree; one outside it reads as not found, like another tenant's
    Case("rest POST alerts/{id}/acknowledge", Action.ALERT_ACKNOWLEDGE, "rest", OPERATORS, rest_acknowledge_alert,
         exceptions=OUTSIDE_SUBTREE),
    Case("rest POST alerts/{id}/clear", Action.ALERT_CLEAR, "rest", OPERATORS, rest_clear_alert,
         exceptions=OUTSIDE_SUBTREE),
    Case("graphql acknowledgeAlert", Action.ALERT_ACKNOWLEDGE, "graphql", OPERATORS, graphql_acknowledge_alert,
         exceptions=OUTSIDE_SUBTREE),
    Case("graphql clearAlert", Action.ALERT_CLEAR, "graphql", OPERATORS, graphql_clear_alert,
         exceptions=OUTSIDE_SUBTREE),
    Case("rest POST maintenance-windows", Action.MAINTENANCE_MANAGE, "rest", OPERATORS,
         rest_create_maintenance_window, targets_an_object=False),
    Case("graphql createMaintenanceWindow", Action.MAINTENANCE_MANAGE, "graphql", OPERATORS,
         graphql_create_maintenance_window, targets_an_object=False),
    Case("rest PATCH monitoring/settings", Action.MONITORING_SETTINGS_WRITE, "rest", WRITERS,
         rest_update_monitoring_settings, targets_an_object=False),
    Case("graphql updateMonitoringSettings", Action.MONITORING_SETTINGS_WRITE, "graphql", WRITERS,
         graphql_update_monitoring_settings, targets_an_object=False),
    *CAMPAIGN_CASES,
    # notifications are the tenant's: a subtree key is refused whatever its role
    Case("rest POST notifications/channels", Action.NOTIFICATION_MANAGE, "rest", WRITERS,
         rest_create_notification_channel, targets_an_object=False),
    Case("graphql createNotificationChannel", Action.NOTIFICATION_MANAGE, "graphql", WRITERS,
         graphql_create_notification_channel, targets_an_object=False),
    Case("rest POST notifications/channels/{id}/rotate-secret", Action.NOTIFICATION_MANAGE, "rest", WRITERS,
         _rest_on_notification("channels/{id}/rotate-secret", _channel)),
    Case("graphql rotateWebhookSecret", Action.NOTIFICATION_MANAGE, "graphql", WRITERS,
         _graphql_on_notification("rotateWebhookSecret", "id", _channel)),
    Case("rest POST notifications/messages/{id}/replay", Action.NOTIFICATION_REPLAY, "rest", OPERATORS,
         _rest_on_notification("messages/{id}/replay", _message)),
    Case("graphql replayNotification", Action.NOTIFICATION_REPLAY, "graphql", OPERATORS,
         _graphql_on_notification("replayNotification", "id", _message)),
    Case("rest POST notifications/channels/{id}/test", Action.NOTIFICATION_TEST, "rest", OPERATORS,
         _rest_on_notification("channels/{id}/test", _channel)),
    Case("graphql sendTestNotification", Action.NOTIFICATION_TEST, "graphql", OPERATORS,
         _graphql_on_notification("sendTestNotification", "channelId", _channel)),
    *FIRMWARE_WATCH_CASES,
]
READS = {Action.SYNC_RUNS_READ, Action.CREDENTIAL_READ, Action.APIKEY_READ, Action.AUDIT_READ,
         Action.LIVE_SETTINGS_READ, Action.LIVE_UNMIRRORED_READ, Action.CAMPAIGN_READ, Action.ALERT_READ,
         Action.FIRMWARE_WATCH_READ, Action.MONITORING_SETTINGS_READ, Action.NOTIFICATION_READ}
WRITES = set(Action) - READS  # a new action is a write, and must be in the matrix, unless listed as a read
REST_ONLY = {Action.CREDENTIAL_ADD, Action.CREDENTIAL_REMOVE}  # no GraphQL mutation (yet)


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return quiet_simulator()


@pytest.fixture
async def world(app: Litestar, resources: Resources, sim: Simulator) -> AsyncIterator[World]:
    async with http_client(app) as client:
        with resources.upstream.routed(simulator_route(sim)):
            yield await build_world(resources, client, sim.tokens["company"])
    await clear_auth_failures(resources)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_role_matrix(world: World, case: Case) -> None:
    seen = {caller: await case.call(world, caller) for caller in CALLERS}
    assert seen == {caller: case.expected(caller) for caller in CALLERS}


def test_every_write_is_in_the_matrix_over_rest_and_graphql() -> None:
    covered = {(case.action, case.api) for case in CASES}
    for action in WRITES:
        assert (action, "rest") in covered, action
        assert action in REST_ONLY or (action, "graphql") in covered, action


async def test_asking_for_a_sync_needs_the_operator_role_even_outside_rest(db_session: AsyncSession) -> None:
    # MirrorService.ask_for_sync checked the subtree but not the role: a caller other than the REST route (GraphQL,
    # CLI, a job) could ask for a sync as a viewer.
    tenant_id = await make_tenant(db_session)
    viewer = Principal(tenant_id=tenant_id, role=Role.VIEWER)
    with pytest.raises(PermissionDeniedError, match="operator"):
        await MirrorService(db_session, tenant_id).ask_for_sync(viewer, SyncKind.REFRESH)
