"""GraphQL campaigns: create and start by mutation, progress and targets by query, Inverter.campaignHistory."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from service.campaigns.schemas import CampaignSpec
from service.core.clock import utcnow
from service.core.roles import Role
from service.gql.campaigns.inputs import CampaignInput, CampaignTargetsInput
from service.gql.mutation import InvalidFieldsError, validated
from tests.campaigns.conftest import World
from tests.gql.test_operations import OPERATIONS
from tests.tenants.factories import committed_key

RESERVE = 71


async def _graphql(api: httpx.AsyncClient, key: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    answer = await api.post("/graphql", json={"query": query, "variables": variables},
                            headers={"Authorization": f"Bearer {key}"})
    body: dict[str, Any] = answer.json()
    assert "errors" not in body, body
    return body["data"]


CREATE = """mutation($input: CampaignInput!, $dry: Boolean!) {
  createCampaign(input: $input, dryRun: $dry) { campaign { id state targetCount } plan errors { code field message } }
}"""
CAMPAIGN = """query($id: ID!, $after: String) {
  campaign(id: $id) {
    name state counts { state count } etaSeconds
    targets(states: ["applied"], first: 4, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } edges { node { serial state previousValue valueRead } }
    }
  }
}"""


async def test_create_start_follow_and_history_over_graphql(api: httpx.AsyncClient, world: World) -> None:
    operator = await committed_key(world.resources, world.tenant_id, Role.OPERATOR)
    spec = {"name": "reserve 11", "settingId": RESERVE, "value": "11", "waves": {"canarySize": 3}}
    bad = (await _graphql(api, operator, CREATE, {"input": {"name": "x", "settingId": RESERVE}, "dry": True})
           )["createCampaign"]
    assert bad["errors"] == [{"code": "BAD_USER_INPUT", "field": "input.value",
                              "message": "a write campaign needs a value"}]
    dry = (await _graphql(api, operator, CREATE, {"input": spec, "dry": True}))["createCampaign"]
    assert dry["campaign"] is None
    assert dry["plan"]["targets"] == len(world.serials_with(RESERVE))
    created = (await _graphql(api, operator, CREATE, {"input": spec, "dry": False}))["createCampaign"]
    assert created["errors"] == []
    campaign_id = created["campaign"]["id"]
    assert created["campaign"]["state"] == "planned"
    conflict = (await _graphql(api, operator, CREATE, {"input": spec, "dry": False}))["createCampaign"]
    assert conflict["errors"][0]["code"] == "CONFLICT"
    assert campaign_id in conflict["errors"][0]["message"]
    started = await _graphql(api, operator, "mutation($id: ID!) { startCampaign(id: $id) { campaign { state } "
                                            "errors { code } } }", {"id": campaign_id})
    assert started["startCampaign"] == {"campaign": {"state": "running"}, "errors": []}
    await world.engine().run(uuid.UUID(campaign_id))

    viewer = await committed_key(world.resources, world.tenant_id, Role.VIEWER)
    serials: list[str] = []
    after = None
    while True:
        campaign = (await _graphql(api, viewer, CAMPAIGN, {"id": campaign_id, "after": after}))["campaign"]
        page = campaign["targets"]
        serials += [edge["node"]["serial"] for edge in page["edges"]]
        assert {edge["node"]["valueRead"] for edge in page["edges"]} == {"11"}
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert campaign["state"] == "completed"
    assert {c["state"]: c["count"] for c in campaign["counts"]}["applied"] == len(serials)
    assert serials == world.serials_with(RESERVE)
    assert campaign["etaSeconds"] == 0

    history = await _graphql(api, viewer, """query($serial: String!) { inverter(serial: $serial) {
        campaignHistory { campaignId campaignName settingId value campaignState target { state previousValue } } } }""",
                             {"serial": serials[0]})
    entry = history["inverter"]["campaignHistory"]
    assert len(entry) == 1
    assert (entry[0]["campaignId"], entry[0]["campaignState"], entry[0]["target"]["state"]) == (
        campaign_id, "completed", "applied")
    listed = await _graphql(api, viewer, "{ campaigns { id name } }", {})
    assert listed["campaigns"] == [{"id": campaign_id, "name": "reserve 11"}]


async def test_invalid_campaign_input_comes_back_field_by_field_and_creates_nothing(api: httpx.AsyncClient,
                                                                                    world: World) -> None:
    operator = await committed_key(world.resources, world.tenant_id, Role.OPERATOR)
    bad = {"name": "", "settingId": RESERVE, "value": "10", "waves": {"canarySize": 0, "growthFactor": 2},
           "abort": {"failureRate": 2}, "window": {"start": "17:00:00", "end": "21:00:00", "weekdays": [9]}}
    answer = (await _graphql(api, operator, CREATE, {"input": bad, "dry": False}))["createCampaign"]
    assert answer["campaign"] is None
    assert {(e["code"], e["field"]) for e in answer["errors"]} == {
        ("BAD_USER_INPUT", "input.name"), ("BAD_USER_INPUT", "input.waves.canarySize"),
        ("BAD_USER_INPUT", "input.abort.failureRate"), ("BAD_USER_INPUT", "input.window.weekdays")}
    assert "weekdays" in next(e["message"] for e in answer["errors"] if e["field"] == "input.window.weekdays")
    assert (await _graphql(api, operator, "{ campaigns { id } }", {}))["campaigns"] == []


def test_a_problem_is_reported_on_the_graphql_name_of_its_field() -> None:
    # The targets use the inverter filter's words (serialIn), not the campaign file's (serials).
    too_many = CampaignInput(name="x", setting_id=RESERVE, value="10",
                             targets=CampaignTargetsInput(serials=["SA0000001"] * 100_001))
    with pytest.raises(InvalidFieldsError) as raised:
        validated(CampaignSpec, too_many)
    assert [field for field, _ in raised.value.problems] == ["input.targets.serialIn"]


async def test_the_example_create_campaign_operation_plans_what_it_says(api: httpx.AsyncClient,
                                                                        world: World) -> None:
    operator = await committed_key(world.resources, world.tenant_id, Role.OPERATOR)
    variables = json.loads((OPERATIONS / "create_campaign.variables.json").read_text())
    answer = (await _graphql(api, operator, (OPERATIONS / "create_campaign.graphql").read_text(), variables)
              )["createCampaign"]
    assert answer["errors"] == []
    assert answer["campaign"] is None  # a dry run
    models = set(variables["input"]["targets"]["modelIn"])
    expected = [d.serial for d in world.sim.fleet.devices
                if d.model.name in models and d.arm >= 449 and RESERVE in world.sim.truth.settings(d.serial)]
    assert expected
    assert answer["plan"]["targets"] == len(expected)
    assert "waves start only inside the window (tenant timezone)" in answer["plan"]["warnings"]


async def test_create_campaign_names_a_past_deadline_and_an_unknown_account_by_their_input_path(
        api: httpx.AsyncClient, world: World) -> None:
    operator = await committed_key(world.resources, world.tenant_id, Role.OPERATOR)
    spec = {"name": "reserve 11", "settingId": RESERVE, "value": "11"}
    past = (utcnow() - timedelta(minutes=5)).isoformat()
    late = (await _graphql(api, operator, CREATE, {"input": {**spec, "deadline": past}, "dry": True})
            )["createCampaign"]
    assert [(e["code"], e["field"]) for e in late["errors"]] == [("BAD_USER_INPUT", "input.deadline")]
    nowhere = (await _graphql(api, operator, CREATE, {"input": {**spec, "targets": {"accountId": 999_999}},
                                                      "dry": False}))["createCampaign"]
    assert [(e["code"], e["field"]) for e in nowhere["errors"]] == [("BAD_USER_INPUT", "input.targets.accountId")]
    assert nowhere["campaign"] is None
    for targets, field in (({"accountId": 0}, "input.targets.accountId"), ({"siteIdIn": [5, -1]},
                                                                            "input.targets.siteIdIn.1")):
        not_an_id = (await _graphql(api, operator, CREATE, {"input": {**spec, "targets": targets}, "dry": True})
                     )["createCampaign"]
        assert [(e["code"], e["field"], e["message"]) for e in not_an_id["errors"]] == [
            ("BAD_USER_INPUT", field, "Input should be greater than or equal to 1")]
    malformed = await api.post("/graphql", json={"query": "{ campaign(id: \"nope\") { id } }"},
                               headers={"Authorization": f"Bearer {operator}"})
    assert [(e["extensions"]["code"], e["message"]) for e in malformed.json()["errors"]] == [
        ("BAD_USER_INPUT", "id is not a valid id")]

    whole = (await _graphql(api, operator, CREATE, {"input": spec, "dry": True}))["createCampaign"]
    fleet = len(world.sim.truth.visible_serials(world.sim.tokens["company"]))
    assert f"no target criteria given: the whole fleet ({fleet} inverters) is targeted" in whole["plan"]["warnings"]
