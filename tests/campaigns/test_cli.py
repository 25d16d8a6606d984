"""``givfleet campaign``: the campaign file, plan, create, start and status, driven through the command's ops
against a simulator served over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service import cli_campaigns
from service.campaigns.service import CampaignService
from service.cli import app
from service.core.errors import InvalidInputError
from service.core.principal import Principal
from service.db.models.campaign import CampaignState, TargetState
from service.db.models.tenant import Tenant
from service.runtime import Resources
from service.tenants.crypto import load_key_ring
from service.tenants.service import CredentialService
from tests.campaigns.conftest import Served, World, sync_mirror
from tests.campaigns.test_lifecycle import RESERVE
from tests.tenants.factories import committed_tenant

CAMPAIGN_FILE = """\
name: Battery reserve 10 % for subcontractor X
kind: write
setting_id: 71
value: 10
targets:
  statuses: [NORMAL, WARNING]
waves: {canary_size: 2, growth_factor: 4, max_wave_size: 1000, pause_seconds: 0}
abort: {failure_rate: 0.2}
verify: true
skip_if_set: true
"""


def test_a_campaign_file_with_mistakes_is_refused_with_every_problem_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nsetting_id: 71\nwaves: {canary_size: 0}\nwindow: {start: '22:00'}\n")
    with pytest.raises(InvalidInputError) as caught:
        cli_campaigns.read_spec(path)
    message = str(caught.value)
    assert "waves.canary_size: expected at least 1" in message
    assert "window.end: required" in message


def test_a_file_that_is_no_yaml_is_refused_with_its_parser_message_whole(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    answer = CliRunner().invoke(app, ["campaign", "plan", "--tenant", "acme", str(path)])
    assert answer.exit_code == 1
    printed = " ".join(answer.output.split())
    assert "is not YAML or JSON" in printed
    assert "name: [unclosed" in printed  # the parser's excerpt, brackets and all: no markup swallows it


async def test_plan_create_start_and_status(resources: Resources, clean_db: None, served: Served,
                                            tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sim = served.sim
    tenant = await committed_tenant(resources)
    async with resources.session_factory() as session, session.begin():
        await CredentialService(session, Principal.cli(tenant.tenant_id), load_key_ring(resources.settings)).add(
            sim.tokens["company"], label="simulator", base_url=served.base_url, requests_per_minute=6000)
    await sync_mirror(resources, sim, tenant.tenant_id)
    path = tmp_path / "reserve.yaml"
    path.write_text(CAMPAIGN_FILE)
    spec = cli_campaigns.read_spec(path)

    campaign_id, dry = await cli_campaigns.plan_op(resources, tenant.slug, spec, create=False)
    assert campaign_id is None
    assert dry.waves[0] == 2
    assert await cli_campaigns.list_op(resources, tenant.slug) == []
    campaign_id, plan = await cli_campaigns.plan_op(resources, tenant.slug, spec, create=True)
    assert campaign_id is not None
    moving = {"catalogue_requests", "requests_per_minute", "eta_seconds"}  # the budget moved between the two
    assert plan.model_dump(exclude=moving) == dry.model_dump(exclude=moving)
    assert await cli_campaigns.act_op(resources, tenant.slug, str(campaign_id), CampaignService.start) == "running"
    world = World(resources, sim, tenant.tenant_id, tenant.key_id)
    # `status --watch` piped (not a terminal): a line per change of progress, while the engine works.
    capsys.readouterr()
    watching = asyncio.create_task(cli_campaigns.watch_op(resources, tenant.slug, str(campaign_id), 0.01,
                                                          cli_campaigns.status_changes()))
    await world.engine().run(campaign_id)
    status = await asyncio.wait_for(watching, timeout=60)

    assert status.state == CampaignState.COMPLETED.value
    assert status.counts["applied"] == plan.targets
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Battery reserve 10 %")]
    assert "[running]" in lines[0]
    assert "[completed]" in lines[-1]  # the state shows (no markup eats it)
    assert f"applied {plan.targets}" in lines[-1]
    assert len(lines) == len(set(lines)) >= 2  # each line says something new
    assert {sim.truth.setting(s, 71) for s, t in (await world.targets(campaign_id)).items()
            if t.state.value == "applied"} == {10}
    with pytest.raises(InvalidInputError, match="is not a campaign id"):
        await cli_campaigns.status_op(resources, tenant.slug, "nonsense")


async def test_status_says_why_a_campaign_aborted_and_targets_show_each_inverter(world: World) -> None:
    campaign_id = await world.create({"name": "reserve 40", "setting_id": RESERVE, "value": 40,
                                      "waves": {"canary_size": 5}, "abort": {"failure_rate": 0.4}})
    canary = sorted(s for s, t in (await world.targets(campaign_id)).items() if t.wave == 1)
    world.sim.set_locked(canary[:2])  # 2 of 5 fail with -7: the wave fails, the campaign aborts
    await world.act("start", campaign_id)
    await world.engine().run(campaign_id)
    async with world.resources.session_factory() as session:
        slug = (await session.get_one(Tenant, world.tenant_id)).slug

    status = await cli_campaigns.status_op(world.resources, slug, str(campaign_id))
    assert cli_campaigns.status_text(status).endswith(
        "; reason: wave 1: 2 of 5 inverters failed (threshold 40%)")

    failed = await cli_campaigns.targets_op(world.resources, slug, str(campaign_id), [TargetState.FAILED])
    assert [(t.serial, t.state, t.code, t.previous_value) for t in failed.items] == [
        (serial, "failed", -7, str(world.sim.truth.setting(serial, RESERVE))) for serial in canary[:2]]
    assert (failed.total_count, failed.has_next_page) == (2, False)

    pages, cursor = [], None
    while True:  # two by two, as `campaign targets --limit 2 --cursor ...` pages
        page = await cli_campaigns.targets_op(world.resources, slug, str(campaign_id), [], limit=2, cursor=cursor)
        pages.append(page.items)
        if not page.has_next_page:
            break
        cursor = page.end_cursor
    serials = [t.serial for items in pages for t in items]
    assert serials == sorted(serials) == sorted(await world.targets(campaign_id))
    assert {len(items) for items in pages[:-1]} == {2}
    assert {t.reason for items in pages for t in items if t.state == "skipped"} == {"aborted"}


def test_the_readme_campaign_file_is_a_valid_campaign(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("A campaign file (YAML or JSON", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "readme.yaml"
    path.write_text(example)
    spec = cli_campaigns.read_spec(path)
    assert (spec.setting_id, spec.value, spec.targets.firmware_arm_min) == (71, 10, 449)
    assert spec.window is not None
    assert spec.window.weekdays == [0, 1, 2, 3, 4]
