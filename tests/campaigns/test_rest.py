"""REST /api/v1/campaigns against a tenant mirroring an in-process simulator."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx

from service.core.clock import utcnow
from service.core.roles import Role
from tests.campaigns.conftest import World
from tests.tenants.factories import committed_key

RESERVE = 71


async def _headers(world: World, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {await committed_key(world.resources, world.tenant_id, role)}"}


SPEC = {"name": "reserve 10", "setting_id": RESERVE, "value": 10, "waves": {"canary_size": 3}}


async def test_dry_run_create_start_progress_and_targets_by_state(api: httpx.AsyncClient, world: World) -> None:
    operator = await _headers(world, Role.OPERATOR)
    viewer = await _headers(world, Role.VIEWER)
    dry = await api.post("/api/v1/campaigns/?dry_run=true", json=SPEC, headers=operator)
    assert dry.status_code == 200, dry.text  # nothing was created
    plan = dry.json()["plan"]
    assert dry.json()["campaign"] is None
    offering = world.serials_with(RESERVE)
    assert plan["targets"] == len(offering)
    assert {e["reason"] for e in plan["exclusions"]} == {"setting_not_offered"}
    assert plan["waves"][0] == 3
    assert sum(plan["waves"]) == len(offering)
    assert plan["requests"] == 3 * len(plan["waves"])
    assert plan["eta_seconds"] > 0
    assert (await api.get("/api/v1/campaigns/", headers=viewer)).json() == []

    assert (await api.post("/api/v1/campaigns/", json=SPEC, headers=viewer)).status_code == 403
    created = await api.post("/api/v1/campaigns/", json=SPEC, headers=operator)
    assert created.status_code == 201, created.text
    campaign = created.json()["campaign"]
    assert campaign["state"] == "planned"
    assert campaign["counts"] == {"excluded": len(plan["exclusions"]), "pending": len(offering)}
    started = await api.post(f"/api/v1/campaigns/{campaign['id']}/start", headers=operator)
    assert started.json()["state"] == "running"
    await world.engine().run(uuid.UUID(campaign["id"]))

    done = (await api.get(f"/api/v1/campaigns/{campaign['id']}", headers=viewer)).json()
    assert done["state"] == "completed"
    assert done["counts"]["applied"] == len(offering)
    assert done["eta_seconds"] == 0
    seen: list[str] = []
    cursor = None
    while True:
        query = f"?state=applied&limit=5{f'&cursor={cursor}' if cursor else ''}"
        page = (await api.get(f"/api/v1/campaigns/{campaign['id']}/targets{query}", headers=viewer)).json()
        assert page["total_count"] == len(offering)
        seen += [item["serial"] for item in page["items"]]
        assert {item["value_read"] for item in page["items"]} == {"10"}
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == offering
    excluded = (await api.get(f"/api/v1/campaigns/{campaign['id']}/targets?state=excluded",
                              headers=viewer)).json()
    assert {item["reason"] for item in excluded["items"]} == {"setting_not_offered"}


async def test_errors_are_problems_never_500(api: httpx.AsyncClient, world: World) -> None:
    operator = await _headers(world, Role.OPERATOR)
    bad = await api.post("/api/v1/campaigns/", json={"name": "x", "setting_id": RESERVE}, headers=operator)
    assert bad.status_code == 400
    assert "needs a value" in bad.text
    first = (await api.post("/api/v1/campaigns/", json=SPEC, headers=operator)).json()["campaign"]
    conflict = await api.post("/api/v1/campaigns/", json=SPEC, headers=operator)
    assert conflict.status_code == 409
    assert first["id"] in conflict.json()["detail"]
    approve = await api.post(f"/api/v1/campaigns/{first['id']}/approve", headers=operator)
    assert approve.status_code == 403
    resume = await api.post(f"/api/v1/campaigns/{first['id']}/resume", headers=operator)
    assert resume.status_code == 409
    assert "cannot resume a campaign that is planned" in resume.json()["detail"]
    missing = await api.get("/api/v1/campaigns/00000000-0000-0000-0000-000000000000", headers=operator)
    assert missing.status_code == 404
    cursor = await api.get(f"/api/v1/campaigns/{first['id']}/targets?cursor=nonsense", headers=operator)
    assert cursor.status_code == 400  # one rule for bad input: 400, as every other cursor
    for targets, key in (({"account_id": 0}, "targets.account_id"), ({"site_ids": [-1]}, "targets.site_ids.0")):
        not_an_id = await api.post("/api/v1/campaigns/?dry_run=true", json={**SPEC, "targets": targets},
                                   headers=operator)
        assert not_an_id.status_code == 400, not_an_id.text  # as GraphQL's BAD_USER_INPUT: one check of the input
        assert [error["key"] for error in not_an_id.json()["errors"]] == [key]


async def test_the_openapi_document_declares_201_for_a_campaign_and_200_for_a_dry_run(api: httpx.AsyncClient) -> None:
    document = (await api.get("/schema/openapi.json")).json()
    responses = document["paths"]["/api/v1/campaigns"]["post"]["responses"]
    assert {"200", "201"} <= set(responses)
    assert "dry run" in responses["200"]["description"]


async def test_a_plan_without_target_criteria_says_it_targets_the_whole_fleet(api: httpx.AsyncClient,
                                                                              world: World) -> None:
    operator = await _headers(world, Role.OPERATOR)
    fleet = len(world.sim.truth.visible_serials(world.sim.tokens["company"]))
    warning = f"no target criteria given: the whole fleet ({fleet} inverters) is targeted"
    for targets in ({}, {"targets": {}}, {"targets": {"exclude_serials": ["SA0000001"]}}):
        plan = (await api.post("/api/v1/campaigns/?dry_run=true", json={**SPEC, **targets}, headers=operator)
                ).json()["plan"]
        assert plan["matched"] == fleet
        assert warning in plan["warnings"], targets
    narrowed = (await api.post("/api/v1/campaigns/?dry_run=true", json={**SPEC, "targets": {"statuses": ["NORMAL"]}},
                               headers=operator)).json()["plan"]
    assert not [w for w in narrowed["warnings"] if "whole fleet" in w]


async def test_a_past_deadline_and_an_unknown_account_are_refused_on_their_field(api: httpx.AsyncClient,
                                                                                  world: World) -> None:
    operator = await _headers(world, Role.OPERATOR)
    past = (utcnow() - timedelta(hours=1)).isoformat()
    for dry_run in ("true", "false"):
        late = await api.post(f"/api/v1/campaigns/?dry_run={dry_run}", json={**SPEC, "deadline": past},
                              headers=operator)
        assert late.status_code == 422, late.text
        assert [error["key"] for error in late.json()["errors"]] == ["deadline"]
        assert "has passed" in late.json()["detail"]
        nowhere = await api.post(f"/api/v1/campaigns/?dry_run={dry_run}",
                                 json={**SPEC, "targets": {"account_id": 999_999}}, headers=operator)
        assert nowhere.status_code == 422, nowhere.text
        assert [error["key"] for error in nowhere.json()["errors"]] == ["targets.account_id"]
        assert "no account 999999" in nowhere.json()["detail"]
    ahead = (utcnow() + timedelta(days=1)).isoformat()
    accepted = await api.post("/api/v1/campaigns/?dry_run=true", json={**SPEC, "deadline": ahead}, headers=operator)
    assert accepted.status_code == 200, accepted.text
    viewer = await _headers(world, Role.VIEWER)
    assert (await api.get("/api/v1/campaigns/", headers=viewer)).json() == []
