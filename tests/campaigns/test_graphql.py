"""GraphQL campaigns: create and start by mutation, progress and targets by query, Inverter.campaignHistory."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from service.core.roles import Role
from tests.campaigns.conftest import World
from tests.tenants.factories import committed_key

RESERVE = 71


async def _graphql(api: httpx.AsyncClient, key: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    answer = await api.post("/graphql", json={"query": query, "variables": variables},
                            headers={"Authorization": f"Bearer {key}"})
    body: dict[str, Any] = answer.json()
    assert "errors" not in body, body
    return body["data"]


CREATE = """mutation($spec: JSON!, $dry: Boolean!) {
  createCampaign(spec: $spec, dryRun: $dry) { campaign { id state targetCount } plan errors { code field message } }
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
    spec = {"name": "reserve 11", "setting_id": RESERVE, "value": 11, "waves": {"canary_size": 3}}
    bad = (await _graphql(api, operator, CREATE, {"spec": {"name": "x", "setting_id": RESERVE}, "dry": True})
           )["createCampaign"]
    assert bad["errors"][0]["code"] == "BAD_USER_INPUT"
    dry = (await _graphql(api, operator, CREATE, {"spec": spec, "dry": True}))["createCampaign"]
    assert dry["campaign"] is None
    assert dry["plan"]["targets"] == len(world.serials_with(RESERVE))
    created = (await _graphql(api, operator, CREATE, {"spec": spec, "dry": False}))["createCampaign"]
    assert created["errors"] == []
    campaign_id = created["campaign"]["id"]
    assert created["campaign"]["state"] == "planned"
    conflict = (await _graphql(api, operator, CREATE, {"spec": spec, "dry": False}))["createCampaign"]
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
