"""Campaigns against the simulator: outcomes equal its ground truth and control log."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from service.campaigns.service import CampaignService
from service.campaigns.views import campaign_view
from service.cli_campaigns import console, print_status
from service.core.clock import utcnow
from service.db.models.campaign import CampaignState, TargetState
from service.runtime import Resources
from tests.campaigns.conftest import Fault, World, quiet, sync_mirror, with_faults, world_of

RESERVE = 71


async def test_a_write_campaign_applies_verifies_and_writes_each_inverter_once(world: World) -> None:
    sim = world.sim
    serials = world.serials_with(RESERVE)
    already = serials[0]
    sim.drift_setting(already, RESERVE, 10)  # already at the target: skipped, never written
    before = {serial: sim.truth.setting(serial, RESERVE) for serial in serials}
    campaign_id = await world.create({"name": "reserve 10", "setting_id": RESERVE, "value": 10,
                                      "waves": {"canary_size": 3, "growth_factor": 4}})
    await world.act("start", campaign_id)
    await world.engine().run(campaign_id)

    campaign = await world.campaign(campaign_id)
    assert campaign.state is CampaignState.COMPLETED
    targets = await world.targets(campaign_id)
    acted = [s for s, t in targets.items() if t.state is not TargetState.EXCLUDED]
    assert sorted(acted) == serials
    assert targets[already].state is TargetState.SKIPPED
    assert targets[already].reason == "already_set"
    for serial in serials:
        assert sim.truth.setting(serial, RESERVE) == 10
        if serial != already:
            assert targets[serial].state is TargetState.APPLIED
            assert targets[serial].previous_value == str(before[serial])
            assert targets[serial].value_read == "10"
    written = Counter(call.serial for call in world.writes(RESERVE))
    assert already not in written
    assert set(written.values()) == {1}
    # per wave: one read, one write, one read-back
    assert campaign.requests_used == 3 * campaign.wave_count


def expected_state(world: World, serial: str, setting_id: int, target: int, previous: str | None) -> TargetState:
    """The terminal state the simulator's ground truth implies for a written inverter."""
    stored = str(world.sim.truth.setting(serial, setting_id)).lower()
    if stored == str(target):
        return TargetState.APPLIED
    if stored == previous:
        return TargetState.NOT_APPLIED
    return TargetState.APPLIED_MODIFIED


async def test_faults_offline_locked_and_another_actor_end_as_the_devices_say(world: World) -> None:
    sim = world.sim
    serials = world.serials_with(RESERVE)
    offline_back, offline_gone, locked, foreign = serials[:4]
    sim.set_offline([offline_back, offline_gone])
    sim.set_locked([locked])
    sim.set_another_actor([foreign])
    before = {serial: str(sim.truth.setting(serial, RESERVE)) for serial in serials}
    campaign_id = await world.create({"name": "reserve 12", "setting_id": RESERVE, "value": 12,
                                      "waves": {"canary_size": 100}, "max_attempts": 3, "retry_after_seconds": 600})
    await world.act("start", campaign_id)
    engine = world.engine()
    outcomes = await engine.run(campaign_id)
    assert outcomes[-1].did == "waiting before the next wave"  # offline ones are retried after 10 minutes
    sim.set_offline([offline_back], False)
    for _ in range(3):
        sim.clock.advance(timedelta(seconds=600))
        await engine.run(campaign_id)

    assert (await world.campaign(campaign_id)).state is CampaignState.COMPLETED
    targets = await world.targets(campaign_id)
    assert targets[offline_back].state is TargetState.APPLIED
    assert targets[offline_back].attempts == 2
    assert (targets[offline_gone].state, targets[offline_gone].reason, targets[offline_gone].attempts) == (
        TargetState.FAILED, "offline", 3)
    assert (targets[locked].state, targets[locked].code, targets[locked].reason) == (TargetState.FAILED, -7, "locked")
    assert targets[foreign].state is TargetState.NOT_APPLIED
    for serial in serials:
        assert sim.truth.setting(serial, RESERVE) == (12 if serial not in (offline_gone, locked, foreign)
                                                       else int(before[serial]))
        if targets[serial].state is not TargetState.FAILED:
            assert targets[serial].state is expected_state(world, serial, RESERVE, 12, before[serial])
    written = Counter(call.serial for call in world.writes(RESERVE))
    assert offline_gone not in written  # offline at every read: never written
    assert set(written.values()) == {1}


async def test_timeouts_that_did_and_did_not_apply_are_decided_by_reading_never_by_writing_again(
        world: World) -> None:
    sim = world.sim
    serials = world.serials_with(RESERVE)
    slow = serials[:8]
    before = {serial: str(sim.truth.setting(serial, RESERVE)) for serial in serials}
    campaign_id = await world.create({"name": "reserve 15", "setting_id": RESERVE, "value": 15,
                                      "waves": {"canary_size": 100}, "retry_after_seconds": 60})
    await world.act("start", campaign_id)
    engine = world.engine()
    assert (await engine.tick(campaign_id)).did.startswith("read of")
    sim.set_timeout(slow)  # the write and its read-back time out (-1): the write may or may not have applied
    assert (await engine.tick(campaign_id)).did.startswith("write of")
    assert (await engine.tick(campaign_id)).did.startswith("verify of")
    targets = await world.targets(campaign_id)
    assert {targets[serial].state for serial in slow} == {TargetState.UNVERIFIED}
    assert {targets[serial].code for serial in slow} == {-1}
    assert (await engine.run(campaign_id))[-1].did == "waiting before the next wave"
    sim.set_timeout(slow, False)
    sim.clock.advance(timedelta(seconds=60))
    await engine.run(campaign_id)

    targets = await world.targets(campaign_id)
    applied = {call.serial: call.applied for call in world.writes(RESERVE) if call.serial in slow}
    assert set(applied.values()) == {True, False}  # both kinds of timeout happened
    for serial in slow:
        assert targets[serial].state is (TargetState.APPLIED if applied[serial] else TargetState.NOT_APPLIED)
        assert targets[serial].state is expected_state(world, serial, RESERVE, 15, before[serial])
    assert Counter(call.serial for call in world.writes(RESERVE)).most_common(1)[0][1] == 1
    assert (await world.campaign(campaign_id)).state is CampaignState.COMPLETED


async def test_clamped_values_are_applied_modified_and_invalid_ones_excluded_by_the_models_rule(
        resources: Resources, clean_db: None) -> None:
    async with world_of(resources, quiet(fleet_size=60)) as world:
        await _clamping(world)


async def _clamping(world: World) -> None:
    sim = world.sim
    charge = 72
    campaign_id = await world.create({"name": "charge 3600", "setting_id": charge, "value": 3600,
                                      "waves": {"canary_size": 1000}})
    await world.act("start", campaign_id)
    await world.engine().run(campaign_id)
    targets = await world.targets(campaign_id)
    clamped = [s for s, t in targets.items() if t.state is TargetState.APPLIED_MODIFIED]
    assert clamped
    for serial, target in targets.items():
        device = sim.truth.device(serial)
        if target.state is TargetState.EXCLUDED:
            if charge not in sim.truth.settings(serial):
                assert target.reason == "setting_not_offered"
            else:
                assert target.reason == f"invalid_value: must be between 0 and {device.model.battery_max_w}"
                assert device.model.battery_max_w < 3600
            continue
        if target.previous_value == "3600":  # the factory default of some: never written again
            assert (target.state, target.reason) == (TargetState.SKIPPED, "already_set")
            assert sim.truth.setting(serial, charge) == 3600
            continue
        stored = min(3600, device.max_charge_rate)  # the device clamps to its battery's limit
        assert sim.truth.setting(serial, charge) == stored
        assert target.value_read == str(stored)
        assert target.state is (TargetState.APPLIED if stored == 3600 else TargetState.APPLIED_MODIFIED)


async def test_lost_answers_are_resolved_by_reading_and_only_unchanged_inverters_written_again(
        world: World) -> None:
    sim = world.sim
    transport = with_faults(
        world,
        Fault("multi-control/write", nth=1, status=429),  # refused before any device: simply sent later
        Fault("multi-control/write", nth=2, status=502, after=True),  # applied, answer lost: read, not resent
        Fault("multi-control/write", nth=3, status=503),  # not applied, answer lost: read, then written again
        Fault("multi-control/read", nth=1, status=500),  # a read is simply repeated
    )
    serials = world.serials_with(RESERVE)
    campaign_id = await world.create({"name": "reserve 20", "setting_id": RESERVE, "value": 20,
                                      "waves": {"canary_size": 5, "growth_factor": 2, "max_wave_size": 10}})
    await world.act("start", campaign_id)
    engine = world.engine()
    for _ in range(20):
        outcomes = await engine.run(campaign_id)
        if outcomes[-1].next_at is None:
            break
        sim.clock.advance(timedelta(seconds=30))  # a 429 or failed read waits before trying again
    assert len(transport.injected) == 4

    campaign = await world.campaign(campaign_id)
    assert campaign.state is CampaignState.COMPLETED
    targets = await world.targets(campaign_id)
    for serial in serials:
        assert sim.truth.setting(serial, RESERVE) == 20
        assert targets[serial].state is TargetState.APPLIED
    written = Counter(call.serial for call in world.writes(RESERVE))
    assert set(written.values()) == {1}  # on the device, every inverter was written exactly once
    # wave 1 (5) was refused by a 429 then applied behind a 502; wave 2's write (10) was lost to a 503 before
    # reaching the devices: its inverters were read, found unchanged and written again
    assert campaign.rewrites == sum(1 for t in targets.values() if t.wave == 2) == 10
    assert sum(t.writes for t in targets.values()) == len(serials) + campaign.rewrites


async def test_inverters_the_cloud_says_are_not_controllable_are_excluded_from_writes_but_read(
        world: World) -> None:
    sim = world.sim
    serials = world.serials_with(RESERVE)
    uncontrollable = serials[:2]
    for serial in uncontrollable:  # "flags": [] as the mirror sees it: the cloud says it may ignore commands
        device = sim.truth.device(serial)
        device.flags = tuple(flag for flag in device.flags if flag != "is-controllable")
    await sync_mirror(world.resources, sim, world.tenant_id)

    write_id = await world.create({"name": "reserve 13", "setting_id": RESERVE, "value": 13,
                                   "waves": {"canary_size": 100}})
    await world.act("start", write_id)
    await world.engine().run(write_id)
    assert (await world.campaign(write_id)).state is CampaignState.COMPLETED
    targets = await world.targets(write_id)
    for serial in uncontrollable:
        assert (targets[serial].state, targets[serial].reason) == (TargetState.EXCLUDED, "not_controllable")
    assert not {call.serial for call in world.writes(RESERVE)} & set(uncontrollable)
    assert {targets[s].state for s in serials[2:]} == {TargetState.APPLIED}

    read_id = await world.create({"kind": "read", "name": "reserve audit", "setting_id": RESERVE,
                                  "waves": {"canary_size": 100}})
    await world.act("start", read_id)
    await world.engine().run(read_id)
    read = await world.targets(read_id)
    assert {read[serial].state for serial in uncontrollable} == {TargetState.RECORDED}


async def test_a_read_campaign_snapshots_the_setting_and_writes_nothing(world: World) -> None:
    sim = world.sim
    serials = world.serials_with(24)  # Enable Eco Mode
    sim.drift_setting(serials[0], 24, False)
    sim.set_offline([serials[1]])
    campaign_id = await world.create({"kind": "read", "name": "eco audit", "setting_id": 24,
                                      "waves": {"canary_size": 100}, "max_attempts": 1})
    await world.act("start", campaign_id)
    await world.engine().run(campaign_id)
    targets = await world.targets(campaign_id)
    assert (await world.campaign(campaign_id)).state is CampaignState.COMPLETED
    for serial in serials[:1] + serials[2:]:
        assert targets[serial].state is TargetState.RECORDED
        assert targets[serial].value_read == str(sim.truth.setting(serial, 24)).lower()
    assert targets[serials[0]].value_read == "false"
    assert (targets[serials[1]].state, targets[serials[1]].reason) == (TargetState.FAILED, "offline")
    assert not [call for call in sim.control_log if call.action == "multi-write"]


async def test_a_restart_campaign_writes_83_equals_100_once_without_reading(world: World) -> None:
    sim = world.sim
    serials = world.serials_with(83)[:6]
    sim.set_locked([serials[0]])
    campaign_id = await world.create({"kind": "restart", "name": "restart", "targets": {"serials": serials},
                                      "waves": {"canary_size": 100}})
    await world.act("start", campaign_id)
    await world.engine().run(campaign_id)
    targets = await world.targets(campaign_id)
    assert (targets[serials[0]].state, targets[serials[0]].code) == (TargetState.FAILED, -7)
    assert {targets[s].state for s in serials[1:]} == {TargetState.APPLIED}
    writes = world.writes(83)
    assert sorted(call.serial for call in writes) == sorted(serials)
    assert {call.value for call in writes} == {100}
    assert not [call for call in sim.control_log if call.action == "multi-read"]


async def test_a_campaign_waiting_to_retry_offline_inverters_says_when_and_counts_the_wait_in_its_eta(
        resources: Resources, clean_db: None) -> None:
    """The CLI, REST and GraphQL status shows when the next wave may start; its ETA is not the seconds of the
    requests left alone while the retry delay still runs."""
    async with world_of(resources, quiet(start_time=utcnow())) as world:  # the engine's clock is the wall clock's
        world.sim.set_offline(world.serials_with(RESERVE)[:2])
        campaign_id = await world.create({"name": "reserve 12", "setting_id": RESERVE, "value": 12,
                                          "waves": {"canary_size": 100}, "retry_after_seconds": 900})
        await world.act("start", campaign_id)
        assert (await world.engine().run(campaign_id))[-1].did == "waiting before the next wave"
        campaign = await world.campaign(campaign_id)
        async with resources.session_factory() as session:
            before = utcnow()
            progress = await CampaignService(session, world.principal()).progress(campaign, requests_per_minute=60)
            after = utcnow()

    assert campaign.next_step_at is not None
    assert progress.next_step_at == campaign.next_step_at
    assert progress.eta_seconds is not None
    requests = 3  # one read, one write and one read-back of the two offline inverters, at one a second
    assert (campaign.next_step_at - after).total_seconds() + requests - 0.1 <= progress.eta_seconds
    assert progress.eta_seconds <= (campaign.next_step_at - before).total_seconds() + requests + 0.1
    view = campaign_view(campaign, progress)
    console.begin_capture()
    print_status(view)
    shown = " ".join(console.end_capture().split())  # as read, however the terminal wraps it
    assert f"next wave at {campaign.next_step_at:%Y-%m-%d %H:%M:%S} UTC" in shown
