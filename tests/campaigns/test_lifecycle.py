"""The campaign lifecycle against the simulator: pause and resume, abort, window, rollback, conflicts,
approval, subtree scoping, and the audit of every transition."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from service.campaigns.service import CampaignService
from service.core.errors import ConflictError, NotFoundError, PermissionDeniedError
from service.core.roles import Role
from service.db.models.audit import AuditEvent
from service.db.models.campaign import CampaignState, TargetState
from service.db.models.tenant import Tenant
from tests.campaigns.conftest import World

RESERVE = 71


async def test_pause_takes_effect_before_the_next_chunk_and_resume_finishes(world: World) -> None:
    campaign_id = await world.create({"name": "reserve 30", "setting_id": RESERVE, "value": 30,
                                      "waves": {"canary_size": 4}})
    await world.act("start", campaign_id)
    engine = world.engine()
    assert (await engine.tick(campaign_id)).did.startswith("read of 4")
    await world.act("pause", campaign_id)
    calls = len(world.sim.control_log)
    outcome = await engine.tick(campaign_id)
    assert (outcome.did, outcome.next_at) == ("campaign is paused", None)
    assert len(world.sim.control_log) == calls  # nothing went on the wire
    await world.act("resume", campaign_id)
    await engine.run(campaign_id)

    assert (await world.campaign(campaign_id)).state is CampaignState.COMPLETED
    targets = await world.targets(campaign_id)
    assert {t.state for t in targets.values()} <= {TargetState.APPLIED, TargetState.EXCLUDED}
    async with world.resources.session_factory() as session:
        audit = (await session.execute(select(AuditEvent.action, AuditEvent.actor, AuditEvent.details)
                                       .where(AuditEvent.target_id == str(campaign_id))
                                       .order_by(AuditEvent.occurred_at, AuditEvent.id))).all()
    assert [(action, actor, details["to"]) for action, actor, details in audit] == [
        ("campaign.create", "apikey:operator", "draft"), ("campaign.plan", "apikey:operator", "planned"),
        ("campaign.start", "apikey:operator", "running"), ("campaign.pause", "apikey:operator", "paused"),
        ("campaign.resume", "apikey:operator", "running"), ("campaign.complete", "system", "completed")]


async def test_a_wave_failing_above_the_threshold_aborts_and_nothing_more_is_written(world: World) -> None:
    serials = world.serials_with(RESERVE)
    campaign_id = await world.create({"name": "reserve 40", "setting_id": RESERVE, "value": 40,
                                      "waves": {"canary_size": 5}, "abort": {"failure_rate": 0.4}})
    targets = await world.targets(campaign_id)
    canary = [s for s, t in targets.items() if t.wave == 1]
    world.sim.set_locked(canary[:2])  # 2 of 5 fail with -7: 40%
    await world.act("start", campaign_id)
    await world.engine().run(campaign_id)

    campaign = await world.campaign(campaign_id)
    assert campaign.state is CampaignState.ABORTED
    assert campaign.state_reason == "wave 1: 2 of 5 inverters failed (threshold 40%)"
    targets = await world.targets(campaign_id)
    assert {s for s, t in targets.items() if t.state is TargetState.FAILED} == set(canary[:2])
    assert {s for s, t in targets.items() if t.state is TargetState.APPLIED} == set(canary[2:])
    later = [s for s in serials if s not in canary]
    assert {targets[s].state for s in later} == {TargetState.SKIPPED}
    assert {targets[s].reason for s in later} == {"aborted"}
    assert {call.serial for call in world.writes(RESERVE)} == set(canary)


async def test_waves_start_only_inside_the_window_in_the_tenants_timezone_on_the_simulator_clock(
        world: World) -> None:
    # The simulator's clock: Monday 2026-06-01 12:00 UTC = 13:00 in London (BST).
    campaign_id = await world.create({"name": "night", "setting_id": RESERVE, "value": 25,
                                      "window": {"start": "22:00", "end": "02:00", "weekdays": [0]}})
    await world.act("start", campaign_id)
    engine = world.engine()
    calls = len(world.sim.control_log)
    outcome = await engine.tick(campaign_id)
    assert outcome.did == "outside the window"
    assert outcome.next_at == datetime(2026, 6, 1, 21, 0, tzinfo=UTC)
    assert len(world.sim.control_log) == calls
    world.sim.clock.advance(timedelta(hours=8, minutes=59))
    assert (await engine.tick(campaign_id)).did == "outside the window"
    world.sim.clock.advance(timedelta(minutes=1))
    await engine.run(campaign_id)
    assert (await world.campaign(campaign_id)).state is CampaignState.COMPLETED
    assert {call.time for call in world.writes(RESERVE)} == {datetime(2026, 6, 1, 21, 0, tzinfo=UTC)}


async def test_rollback_restores_each_previous_value_grouped_by_value_and_leaves_changed_ones(world: World) -> None:
    sim = world.sim
    serials = world.serials_with(RESERVE)
    for index, serial in enumerate(serials):
        sim.drift_setting(serial, RESERVE, (5, 6, 7)[index % 3])  # three distinct previous values
    campaign_id = await world.create({"name": "reserve 50", "setting_id": RESERVE, "value": 50,
                                      "waves": {"canary_size": 100}})
    await world.act("start", campaign_id)
    await world.engine().run(campaign_id)
    changed = serials[0]
    sim.drift_setting(changed, RESERVE, 77)  # someone else changed it since
    log_before = len(sim.control_log)
    await world.act("rollback", campaign_id)
    await world.engine().run(campaign_id)

    assert (await world.campaign(campaign_id)).state is CampaignState.ROLLED_BACK
    targets = await world.targets(campaign_id)
    assert targets[changed].state is TargetState.CHANGED_SINCE
    assert sim.truth.setting(changed, RESERVE) == 77
    for index, serial in enumerate(serials[1:], start=1):
        assert targets[serial].state is TargetState.ROLLED_BACK
        assert sim.truth.setting(serial, RESERVE) == (5, 6, 7)[index % 3]
    rollback_writes = [call for call in world.writes(RESERVE, since=log_before)]
    assert changed not in {call.serial for call in rollback_writes}
    assert Counter(call.value for call in rollback_writes) == Counter(
        (5, 6, 7)[index % 3] for index in range(1, len(serials)))
    values_per_request = {(call.time, call.value) for call in rollback_writes}
    assert len(values_per_request) == 3  # one multi-write per distinct previous value


async def test_a_second_campaign_on_the_same_setting_and_inverters_is_refused_naming_the_first(
        world: World) -> None:
    first = await world.create({"name": "first", "setting_id": RESERVE, "value": 20})
    with pytest.raises(ConflictError, match=f"campaign 'first' \\({first}, planned\\) already writes setting 71"):
        await world.create({"name": "second", "setting_id": RESERVE, "value": 30})
    await world.create({"name": "other setting", "setting_id": 75, "value": 10})
    await world.create({"name": "a read", "kind": "read", "setting_id": RESERVE})
    await world.act("cancel", first)
    assert await world.create({"name": "second", "setting_id": RESERVE, "value": 30})


async def test_above_the_threshold_an_admin_with_another_key_must_approve(world: World) -> None:
    async with world.resources.session_factory() as session, session.begin():
        await session.execute(update(Tenant).where(Tenant.id == world.tenant_id)
                              .values(campaign_approval_threshold=5))
    creator = world.principal(Role.ADMIN)
    campaign_id = await world.create({"name": "big", "setting_id": RESERVE, "value": 20}, creator)
    with pytest.raises(ConflictError, match="an admin with another key must approve it first"):
        await world.act("start", campaign_id)
    with pytest.raises(PermissionDeniedError, match="needs the admin role"):
        await world.act("approve", campaign_id, world.principal(Role.OPERATOR))
    with pytest.raises(PermissionDeniedError, match="different key"):
        await world.act("approve", campaign_id, creator)
    approved = await world.act("approve", campaign_id, world.principal(Role.ADMIN))
    assert approved.state is CampaignState.APPROVED
    assert (await world.act("start", campaign_id)).state is CampaignState.RUNNING
    small = await world.create({"name": "small", "setting_id": 75, "value": 10,
                                "targets": {"serials": world.serials_with(75)[:5]}})
    assert (await world.act("start", small)).state is CampaignState.RUNNING  # at the threshold: no approval


async def test_a_subtree_key_targets_only_its_subtree_and_sees_only_its_campaigns(world: World) -> None:
    sim = world.sim
    contractor = sim.fleet.named_accounts["sub_contractor"]
    inside = {d.serial for d in sim.fleet.devices_of(contractor) if RESERVE in sim.truth.settings(d.serial)}
    assert inside
    restricted = world.principal(restricted_account_id=str(contractor))
    campaign_id = await world.create({"name": "mine", "setting_id": RESERVE, "value": 20}, restricted)
    targets = await world.targets(campaign_id)
    assert {s for s, t in targets.items() if t.state is not TargetState.EXCLUDED} == inside
    outside = sim.fleet.named_accounts["company"]
    with pytest.raises(PermissionDeniedError, match="only target inverters inside it"):
        await world.create({"name": "theirs", "setting_id": 75, "value": 10, "targets": {"account_id": outside}},
                           restricted)
    whole = await world.create({"name": "everyone", "setting_id": 75, "value": 10})
    async with world.resources.session_factory() as session:
        with pytest.raises(NotFoundError):
            await CampaignService(session, restricted).get(whole)
        assert [c.id for c in await CampaignService(session, restricted).list()] == [campaign_id]
