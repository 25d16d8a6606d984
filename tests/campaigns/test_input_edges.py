"""Campaign and firmware-watch input at its edges: serial lists beyond the protocol's parameter limit, control
characters in names, the restart value as GraphQL writes it, errors on the field at fault, the watch list's
``first`` and its progress in one statement."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import event, select
from sqlalchemy.dialects import postgresql

from service.campaigns.firmware import FirmwareWatchService, WatchSpec
from service.campaigns.schemas import CampaignSpec
from service.core.errors import ConflictError
from service.core.roles import Role
from service.core.tenancy import TenantId
from service.db.models.campaign import CampaignKind
from service.db.models.mirror import Inverter
from service.gql.campaigns.inputs import CampaignInput, CampaignWindowInput
from service.gql.mutation import InvalidFieldsError, validated
from service.mirror.queries import InverterFilter, ReadScope
from tests.campaigns.conftest import World
from tests.campaigns.test_firmware_watch import MODEL, TARGET, create, read
from tests.tenants.factories import committed_key

PAST_THE_PROTOCOL = 40_000
"""More serials than PostgreSQL's protocol allows parameters in one statement (32,767)."""


def test_a_serial_list_is_one_array_parameter_whatever_its_length() -> None:
    conditions = InverterFilter(serial_in=[f"SX{i:07d}" for i in range(PAST_THE_PROTOCOL)],
                                site_id_in=list(range(PAST_THE_PROTOCOL))).conditions(
        ReadScope.of(TenantId(uuid.uuid4()), None), datetime.now(UTC))
    compiled = select(Inverter.serial).where(*conditions).compile(dialect=postgresql.asyncpg.dialect())
    assert len(compiled.positiontup or []) < 10


async def test_a_restart_of_forty_thousand_listed_serials_plans_and_conflicts_without_a_database_error(
        world: World) -> None:
    async with world.resources.session_factory() as session:
        real = list((await session.execute(select(Inverter.serial).where(Inverter.tenant_id == world.tenant_id)
                                           .order_by(Inverter.serial).limit(3))).scalars())
    listed = real + [f"ZZ{i:07d}" for i in range(PAST_THE_PROTOCOL)]
    spec = {"name": "restart many", "kind": "restart", "targets": {"serials": listed}}
    campaign_id = await world.create(spec)
    assert sorted(await world.targets(campaign_id)) == real
    with pytest.raises(ConflictError, match=str(campaign_id)):
        await world.create(spec)


@pytest.mark.parametrize(("model", "data", "field"), [
    (CampaignSpec, {"name": "night\x00", "setting_id": 71, "value": 10}, "name"),
    (CampaignSpec, {"name": "x", "setting_id": 71, "value": "1\x00"}, "value"),
    (CampaignSpec, {"name": "x", "setting_id": 71, "value": 1, "targets": {"models": ["GIV\x1b"]}}, "targets"),
    (WatchSpec, {"name": "rollout\n", "model": MODEL, "target_firmware_arm": TARGET}, "name"),
    (WatchSpec, {"name": "rollout", "model": "GIV\x00", "target_firmware_arm": TARGET}, "model"),
])
def test_control_characters_are_refused_on_their_field(model: Any, data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(data)
    assert [(error["loc"][0], "control characters" in error["msg"]) for error in raised.value.errors()] == [
        (field, True)]


def test_a_restart_accepts_its_value_as_graphql_writes_it() -> None:
    spec = validated(CampaignSpec, CampaignInput(name="restart", kind=CampaignKind.RESTART, value="100"))
    assert (spec.setting_id, spec.value) == (83, 100)
    with pytest.raises(InvalidFieldsError) as raised:
        validated(CampaignSpec, CampaignInput(name="restart", kind=CampaignKind.RESTART, value="5"))
    assert [field for field, _ in raised.value.problems] == ["input.value"]


@pytest.mark.parametrize(("given", "field"), [
    ({"value": "10"}, "input.settingId"),
    ({"setting_id": 71}, "input.value"),
    ({"setting_id": 71, "value": "10", "deadline": datetime.fromisoformat("2026-12-01T18:00:00")}, "input.deadline"),
    ({"setting_id": 71, "value": "10", "window": CampaignWindowInput(start=time(17), end=time(21), weekdays=[7])},
     "input.window.weekdays"),
])
def test_a_rule_on_one_field_is_reported_on_that_field(given: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidFieldsError) as raised:
        validated(CampaignSpec, CampaignInput(name="x", **given))
    assert [problem for problem, _ in raised.value.problems] == [field]


def test_a_watch_target_at_or_below_the_cohort_is_refused_on_the_target() -> None:
    with pytest.raises(ValidationError) as raised:
        WatchSpec(name="x", model=MODEL, firmware_arm_min=TARGET, target_firmware_arm=TARGET)
    assert [error["loc"] for error in raised.value.errors()] == [("target_firmware_arm",)]
    assert "above firmware_arm_min" in str(raised.value)


async def test_the_watch_list_reads_every_progress_in_one_statement_and_checks_first(api: httpx.AsyncClient,
                                                                                   world: World) -> None:
    principal = world.principal()
    for low in (100, 200, 300):
        await create(world, principal, firmware_arm_min=low)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = world.resources.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        views = await read(world, principal, lambda service: _listed(service))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(views) == 3
    assert sum(view.member_count for view in views) == sum(sum(view.counts.values()) for view in views)
    assert len([s for s in statements if "GROUP BY" in s]) == 1

    viewer = await committed_key(world.resources, world.tenant_id, Role.VIEWER)
    for first in (-1, 501):
        answer = (await api.post("/graphql", json={"query": f"{{ firmwareWatches(first: {first}) {{ id }} }}"},
                                 headers={"Authorization": f"Bearer {viewer}"})).json()
        assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", answer
        assert "first" in answer["errors"][0]["message"]


async def _listed(service: FirmwareWatchService) -> Any:
    return await service.views(await service.list())
