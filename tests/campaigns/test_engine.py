"""Campaigns against the simulator: outcomes equal its ground truth and control log."""

from __future__ import annotations

from collections import Counter

from service.db.models import CampaignState, TargetState
from tests.campaigns.conftest import World

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
