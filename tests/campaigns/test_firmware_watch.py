"""Firmware watches against the simulator: a cohort, some inverters updated (as a sync sees it), the stragglers
after N days on the simulator clock, and a restart campaign targeted at exactly them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from service import cli_firmware_watch
from service.campaigns.firmware import FirmwareWatchService, WatchSpec, prepare_restart
from service.core.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from service.core.principal import Principal
from service.core.roles import Role
from service.db.models.audit import AuditEvent
from service.db.models.campaign import CampaignKind, CampaignState
from service.db.models.tenant import Tenant
from service.jobs.enqueue import unit_of_work
from tests.campaigns.conftest import World, sync_mirror
from tests.tenants.factories import committed_key

MODEL = "GIV-AC3.6"
TARGET = 500


def cohort_of(world: World, model: str = MODEL, accounts: set[int] | None = None) -> list[str]:
    """The company's inverters of ``model`` with ARM firmware 100..499 (the simulator's ground truth)."""
    visible = world.sim.truth.visible_serials(world.sim.tokens["company"])
    return sorted(d.serial for d in world.sim.fleet.devices
                  if d.serial in visible and d.model.name == model and 100 <= d.arm < TARGET
                  and (accounts is None or d.account_id in accounts))


async def create(world: World, principal: Principal, **spec: Any) -> Any:
    async with unit_of_work(world.resources.session_factory, world.resources.redis) as session:
        watch = await FirmwareWatchService(session, principal, world.sim.now).create(WatchSpec.model_validate(
            {"name": "ARM 500 rollout", "model": MODEL, "firmware_arm_min": 100, "firmware_arm_max": TARGET - 1,
             "target_firmware_arm": TARGET, **spec}))
        return watch.id


async def read(world: World, principal: Principal, work: Callable[[FirmwareWatchService], Any]) -> Any:
    async with world.resources.session_factory() as session:
        return await work(FirmwareWatchService(session, principal, world.sim.now))


async def test_stragglers_after_n_days_get_a_restart_campaign_of_exactly_them(world: World) -> None:
    sim, principal = world.sim, world.principal()
    cohort = cohort_of(world)
    assert len(cohort) >= 4
    watch_id = await create(world, principal, straggler_days=7)
    updated, updating, gone, *behind = cohort
    sim.update_firmware(updated, arm=TARGET + 2)
    sim.update_firmware(updating, duration=timedelta(days=30))
    sim.remove_dongle(gone)
    await sync_mirror(world.resources, sim, world.tenant_id)

    async def status(service: FirmwareWatchService) -> tuple[Any, Any]:
        watch = await service.get(watch_id)
        return await service.view(watch), await service.members(watch_id, first=50)

    progress, page = await read(world, principal, status)
    assert progress.counts == {"at_target": 1, "updating": 1, "behind": len(behind), "removed": 1}
    assert progress.stragglers == 0  # not yet 7 days
    states = {m.serial: (m.state, m.straggler) for m in page.items}
    assert states == {updated: ("at_target", False), updating: ("updating", False), gone: ("removed", False),
                      **{serial: ("behind", False) for serial in behind}}
    since = {m.serial: m.since for m in page.items}
    assert since[updated] is not None  # when the sync saw the new firmware
    assert since[behind[0]] == sim.now()  # the watch started on the simulator clock
    with pytest.raises(ConflictError, match="stragglers from"):
        await prepare_restart(world.resources.session_factory, world.resources.upstream, principal, watch_id,
                              sim.now)

    sim.clock.advance(timedelta(days=7))
    progress = await read(world, principal, lambda s: _progress(s, watch_id))
    assert progress.stragglers == len(behind)
    stragglers = await read(world, principal, lambda s: s.members(watch_id, stragglers_only=True))
    assert [m.serial for m in stragglers.items] == behind

    preparation = await prepare_restart(world.resources.session_factory, world.resources.upstream, principal,
                                        watch_id, sim.now)
    async with unit_of_work(world.resources.session_factory, world.resources.redis) as session:
        campaign, plan = await FirmwareWatchService(session, principal, sim.now).restart_stragglers(
            watch_id, preparation)
        campaign_id = campaign.id
    assert (campaign.kind, campaign.state, campaign.setting_id, campaign.value) == (
        CampaignKind.RESTART, CampaignState.PLANNED, 83, "100")
    assert sorted(await world.targets(campaign_id)) == behind
    assert plan.view.targets == len(behind)
    watch = await read(world, principal, lambda s: s.get(watch_id))
    assert watch.last_restart_campaign_id == campaign_id

    # One click too many: the campaign rules refuse a second restart of the same inverters, naming the first.
    preparation = await prepare_restart(world.resources.session_factory, world.resources.upstream, principal,
                                        watch_id, sim.now)
    with pytest.raises(ConflictError, match=str(campaign_id)):
        async with unit_of_work(world.resources.session_factory, world.resources.redis) as session:
            await FirmwareWatchService(session, principal, sim.now).restart_stragglers(watch_id, preparation)
    async with world.resources.session_factory() as session:
        audited = (await session.execute(select(AuditEvent.action, AuditEvent.target_id).where(
            AuditEvent.tenant_id == world.tenant_id, AuditEvent.action.like("firmware_watch.%"))
            .order_by(AuditEvent.occurred_at))).all()
    assert audited == [("firmware_watch.create", str(watch_id)),
                       ("firmware_watch.restart_stragglers", str(watch_id))]


async def _progress(service: FirmwareWatchService, watch_id: Any) -> Any:
    return await service.view(await service.get(watch_id))


async def test_a_subtree_key_watches_only_its_subtree_and_sees_only_its_watches(world: World) -> None:
    sim = world.sim
    contractor = sim.fleet.named_accounts["sub_contractor"]
    inside = {d.serial for d in sim.fleet.devices_of(contractor)}
    model = next(d.model.name for d in sim.fleet.devices_of(contractor) if 100 <= d.arm < TARGET)
    restricted = world.principal(restricted_account_id=str(contractor))
    mine = await create(world, restricted, model=model)
    members = await read(world, restricted, lambda s: s.members(mine))
    assert {m.serial for m in members.items} == set(cohort_of(world, model)) & inside
    with pytest.raises(PermissionDeniedError, match="only target inverters inside it"):
        await create(world, restricted, account_id=sim.fleet.named_accounts["company"])
    everyone = await create(world, world.principal())
    with pytest.raises(NotFoundError):
        await read(world, restricted, lambda s: s.get(everyone))
    assert [w.id for w in await read(world, restricted, lambda s: s.list())] == [mine]
    with pytest.raises(PermissionDeniedError, match="operator"):
        await create(world, world.principal(Role.VIEWER))
    with pytest.raises(InvalidInputError, match="no inverter"):
        await create(world, world.principal(), model="NO-SUCH-MODEL")
    with pytest.raises(InvalidInputError, match="no account 999999") as unknown:
        await create(world, world.principal(), account_id=999_999)
    assert unknown.value.field == "account_id"


def test_a_watch_spec_refuses_an_empty_firmware_range() -> None:
    with pytest.raises(ValueError, match="must not exceed"):
        WatchSpec(name="x", model=MODEL, firmware_arm_min=500, firmware_arm_max=400, target_firmware_arm=TARGET + 100)


WATCH = """query($id: ID!, $after: String) {
  firmwareWatch(id: $id) {
    name memberCount stragglers counts { state count }
    members(stragglersOnly: true, first: 2, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } edges { node { serial state straggler since } }
    }
  }
}"""


async def test_rest_and_graphql_follow_a_watch_and_restart_its_stragglers(api: httpx.AsyncClient,
                                                                          world: World) -> None:
    sim = world.sim
    operator = {"Authorization": f"Bearer {await committed_key(world.resources, world.tenant_id, Role.OPERATOR)}"}
    viewer_key = await committed_key(world.resources, world.tenant_id, Role.VIEWER)
    viewer = {"Authorization": f"Bearer {viewer_key}"}
    cohort = cohort_of(world)
    spec = {"name": "ARM 500", "model": MODEL, "firmware_arm_min": 100, "firmware_arm_max": TARGET - 1,
            "target_firmware_arm": TARGET, "straggler_days": 0}
    assert (await api.post("/api/v1/firmware-watches/", json=spec, headers=viewer)).status_code == 403
    bad = await api.post("/api/v1/firmware-watches/", json={**spec, "firmware_arm_min": TARGET}, headers=operator)
    assert bad.status_code == 400, bad.text
    created = await api.post("/api/v1/firmware-watches/", json=spec, headers=operator)
    assert created.status_code == 201, created.text
    watch = created.json()
    assert (watch["member_count"], watch["counts"]["behind"]) == (len(cohort), len(cohort))
    sim.update_firmware(cohort[0], arm=TARGET)
    await sync_mirror(world.resources, sim, world.tenant_id)

    got = (await api.get(f"/api/v1/firmware-watches/{watch['id']}", headers=viewer)).json()
    assert got["counts"] == {"at_target": 1, "updating": 0, "behind": len(cohort) - 1, "removed": 0}
    assert got["stragglers"] == len(cohort) - 1  # straggler_days 0: every member still behind
    page = (await api.get(f"/api/v1/firmware-watches/{watch['id']}/progress?state=at_target",
                          headers=viewer)).json()
    assert [(m["serial"], m["firmware_arm"], m["state"]) for m in page["items"]] == [(cohort[0], str(TARGET),
                                                                                     "at_target")]
    assert (await api.get(f"/api/v1/firmware-watches/{watch['id']}/progress?state=late",
                          headers=viewer)).status_code == 400
    listed = (await api.get("/api/v1/firmware-watches/", headers=viewer)).json()
    assert [w["id"] for w in listed] == [watch["id"]]

    seen: list[str] = []
    after = None
    while True:
        body = await api.post("/graphql", json={"query": WATCH, "variables": {"id": watch["id"], "after": after}},
                              headers=viewer)
        data = body.json()["data"]["firmwareWatch"]
        members = data["members"]
        seen += [edge["node"]["serial"] for edge in members["edges"]]
        assert {(e["node"]["state"], e["node"]["straggler"]) for e in members["edges"]} == {("behind", True)}
        if not members["pageInfo"]["hasNextPage"]:
            break
        after = members["pageInfo"]["endCursor"]
    assert seen == cohort[1:]

    refused = await api.post(f"/api/v1/firmware-watches/{watch['id']}/restart-stragglers", headers=viewer)
    assert refused.status_code == 403
    restarted = await api.post(f"/api/v1/firmware-watches/{watch['id']}/restart-stragglers", headers=operator)
    assert restarted.status_code == 201, restarted.text
    campaign = restarted.json()["campaign"]
    assert (campaign["kind"], campaign["state"], campaign["setting_id"]) == ("restart", "planned", 83)
    assert sorted(await world.targets(uuid.UUID(campaign["id"]))) == cohort[1:]
    again = await api.post("/graphql", headers=operator, json={
        "query": "mutation($id: ID!) { restartFirmwareWatchStragglers(id: $id) { campaign { id } "
                 "errors { code message } } }", "variables": {"id": watch["id"]}})
    errors = again.json()["data"]["restartFirmwareWatchStragglers"]["errors"]
    assert errors[0]["code"] == "CONFLICT"
    assert campaign["id"] in errors[0]["message"]


async def test_create_firmware_watch_reports_bad_input_field_by_field(api: httpx.AsyncClient, world: World) -> None:
    operator = {"Authorization": f"Bearer {await committed_key(world.resources, world.tenant_id, Role.OPERATOR)}"}
    mutation = """mutation($input: FirmwareWatchInput!) { createFirmwareWatch(input: $input) {
      firmwareWatch { id memberCount } errors { code field message } } }"""
    bad = {"name": "x", "model": MODEL, "targetFirmwareArm": -1, "stragglerDays": -2}
    answer = (await api.post("/graphql", json={"query": mutation, "variables": {"input": bad}}, headers=operator)
              ).json()["data"]["createFirmwareWatch"]
    assert answer["firmwareWatch"] is None
    assert {e["field"] for e in answer["errors"]} == {"input.targetFirmwareArm", "input.stragglerDays"}
    nowhere = {"name": "x", "model": MODEL, "targetFirmwareArm": TARGET, "accountId": 999_999}
    answer = (await api.post("/graphql", json={"query": mutation, "variables": {"input": nowhere}}, headers=operator)
              ).json()["data"]["createFirmwareWatch"]
    assert [(e["code"], e["field"]) for e in answer["errors"]] == [("BAD_USER_INPUT", "input.accountId")]
    not_an_id = {**nowhere, "accountId": 0}
    answer = (await api.post("/graphql", json={"query": mutation, "variables": {"input": not_an_id}},
                             headers=operator)).json()["data"]["createFirmwareWatch"]
    assert [(e["code"], e["field"], e["message"]) for e in answer["errors"]] == [
        ("BAD_USER_INPUT", "input.accountId", "Input should be greater than or equal to 1")]
    malformed = await api.post("/graphql", headers=operator, json={
        "query": "{ firmwareWatch(id: \"nope\") { id } }"})
    assert [(e["extensions"]["code"], e["message"]) for e in malformed.json()["errors"]] == [
        ("BAD_USER_INPUT", "id is not a valid id")]
    good = {"name": "x", "model": MODEL, "targetFirmwareArm": TARGET, "firmwareArmMax": TARGET - 1}
    answer = (await api.post("/graphql", json={"query": mutation, "variables": {"input": good}}, headers=operator)
              ).json()["data"]["createFirmwareWatch"]
    assert answer["errors"] == []
    assert answer["firmwareWatch"]["memberCount"] == len(cohort_of(world))


async def test_the_cli_creates_a_watch_shows_its_stragglers_and_restarts_them(world: World) -> None:
    async with world.resources.session_factory() as session:
        slug = (await session.execute(select(Tenant.slug).where(Tenant.id == world.tenant_id))).scalar_one()
    cohort = cohort_of(world)
    spec = WatchSpec(name="ARM 500", model=MODEL, firmware_arm_max=TARGET - 1, target_firmware_arm=TARGET,
                     straggler_days=0)
    created = await cli_firmware_watch.create_op(world.resources, slug, spec)
    assert created.member_count == len(cohort)
    view, stragglers = await cli_firmware_watch.status_op(world.resources, slug, str(created.id))
    assert view.stragglers == len(cohort)
    assert [m.serial for m in stragglers] == cohort
    since = f"{view.stragglers_from:%Y-%m-%d %H:%M} UTC"
    assert cli_firmware_watch.status_line(view, view.stragglers_from).endswith(
        f"; stragglers {len(cohort)} (members still behind after {since})")
    week = view.model_copy(update={"stragglers_from": view.started_at + timedelta(days=7), "stragglers": 0})
    assert cli_firmware_watch.status_line(week, view.started_at).endswith(
        f"; no stragglers yet: members still behind at {week.stragglers_from:%Y-%m-%d %H:%M} UTC become stragglers")
    assert [w.id for w in await cli_firmware_watch.list_op(world.resources, slug)] == [created.id]
    campaign_id, plan = await cli_firmware_watch.restart_op(world.resources, slug, str(created.id))
    assert plan.targets == len(cohort)
    assert sorted(await world.targets(campaign_id)) == cohort
    with pytest.raises(InvalidInputError, match="is not a firmware watch id"):
        await cli_firmware_watch.status_op(world.resources, slug, "nonsense")
