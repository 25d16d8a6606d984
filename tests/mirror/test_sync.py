"""Syncs against the simulator: the mirror equals the ground truth, within the plan, and keeps up with changes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from service.core.clock import utcnow
from service.core.tenancy import TenantId
from service.db.models.mirror import Inverter, InverterChange, Site, SyncKind, SyncRun, SyncState
from service.mirror import repository
from service.mirror.repository import MirrorRepository
from service.mirror.runner import SyncOptions
from service.runtime import Resources
from service.simulator import Simulator
from tests.mirror.conftest import FlakyTransport, RunnerFactory, quiet_simulator
from tests.mirror.truth import expected, mirrored


@pytest.fixture(params=["statements", "copy"])
def write_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Small writes go through batched statements, large ones through COPY: run both on a small fleet."""
    if request.param == "copy":
        monkeypatch.setattr(repository, "COPY_THRESHOLD", 0)
    return str(request.param)


async def test_full_sync_mirrors_the_fleet_within_the_plan(
    resources: Resources, tenant_id: TenantId, make_runner: RunnerFactory, write_path: str
) -> None:
    sim = quiet_simulator(40)
    for site in sim.truth.sites()[:5]:
        site.status = "opted_in"
    runner = make_runner(sim)

    outcome = await runner.run(tenant_id, SyncKind.FULL)

    assert outcome.state is SyncState.SUCCEEDED, outcome.error
    async with resources.session_factory() as session:
        assert await mirrored(session, tenant_id) == expected(sim)
    assert outcome.plan is not None
    assert outcome.requests_used == outcome.plan.requests
    assert outcome.rate_limited == 0
    assert outcome.counts.inserted > 0


async def _history(resources: Resources, tenant_id: TenantId) -> list[tuple[str, str, str | None, str | None]]:
    async with resources.session_factory() as session:
        rows = await session.execute(
            select(InverterChange.inverter_serial, InverterChange.kind, InverterChange.from_value,
                   InverterChange.to_value).where(InverterChange.tenant_id == tenant_id)
        )  # fmt: skip
        return sorted((serial, kind.value, old, new) for serial, kind, old, new in rows)


async def _check(resources: Resources, tenant_id: TenantId, sim: Simulator) -> None:
    async with resources.session_factory() as session:
        assert await mirrored(session, tenant_id) == expected(sim)


@pytest.mark.parametrize("kind", [SyncKind.FULL, SyncKind.REFRESH])
async def test_a_second_sync_without_upstream_change_writes_no_rows(
    resources: Resources, tenant_id: TenantId, make_runner: RunnerFactory, kind: SyncKind
) -> None:
    sim = quiet_simulator(30)
    runner = make_runner(sim)
    first = await runner.run(tenant_id, SyncKind.FULL)
    assert first.counts.inserted > 0

    second = await runner.run(tenant_id, kind)

    assert second.state is SyncState.SUCCEEDED, second.error
    assert second.counts.written == 0
    assert second.counts.history == 0
    assert second.plan is not None
    assert second.requests_used == second.plan.requests
    if kind is SyncKind.REFRESH:  # only the dongle list: a page or two, far cheaper than a full sync
        assert second.requests_used < first.requests_used / 4


@pytest.mark.parametrize("kind", [SyncKind.FULL, SyncKind.REFRESH])
async def test_injected_changes_appear_after_the_next_sync_with_history(
    resources: Resources, tenant_id: TenantId, make_runner: RunnerFactory, kind: SyncKind, write_path: str
) -> None:
    sim = quiet_simulator(40)
    runner = make_runner(sim)
    assert (await runner.run(tenant_id, SyncKind.FULL)).state is SyncState.SUCCEEDED
    devices = sim.truth.visible_devices("company")
    flipped, updated, removed, moved = devices[0], devices[1], devices[2], devices[3]
    target_owner = devices[5].owner_id
    assert moved.owner_id != target_owner
    old_owner = moved.owner_id
    sim.set_status(flipped.serial, "LOST")
    sim.update_firmware(updated.serial, arm=updated.arm + 10, dsp=updated.dsp + 10)
    sim.remove_dongle(removed.dongle_serial)
    sim.move_dongle(moved.dongle_serial, target_owner)
    added = sim.add_dongle(devices[6].owner_id)

    outcome = await runner.run(tenant_id, kind)

    assert outcome.state is SyncState.SUCCEEDED, outcome.error
    await _check(resources, tenant_id, sim)
    assert outcome.counts.inserted >= 2  # the new dongle and its inverter (and its battery)
    assert outcome.counts.removed >= 2  # the removed dongle and its inverter (and its parts)
    assert await _history(resources, tenant_id) == sorted(
        [
            (flipped.serial, "status", "NORMAL" if flipped.status_before == "NORMAL" else "WAITING", "LOST"),
            (updated.serial, "firmware_arm", str(updated.arm - 10), str(updated.arm)),
            (updated.serial, "firmware_dsp", str(updated.dsp - 10), str(updated.dsp)),
            (removed.serial, "removed", removed.status, None),
            (moved.serial, "account", str(old_owner), str(target_owner)),
        ]
    )
    async with resources.session_factory() as session:
        gone = (await session.execute(
            select(Inverter.removed_at).where(Inverter.tenant_id == tenant_id, Inverter.serial == removed.serial)
        )).scalar_one()  # fmt: skip
        assert gone is not None  # marked removed, not deleted
        new = (await session.execute(
            select(Inverter.account_upstream_id).where(Inverter.tenant_id == tenant_id, Inverter.serial == added.serial)
        )).scalar_one()  # fmt: skip
        assert new == devices[6].owner_id
        rows = await session.execute(
            select(Inverter.serial, Inverter.status_since, Inverter.first_seen_at).where(
                Inverter.tenant_id == tenant_id, Inverter.serial.in_([flipped.serial, updated.serial])
            )
        )
        since = {serial: (status_since or first) - first for serial, status_since, first in rows}
    assert since[flipped.serial] > timedelta(0)  # "LOST since" the sync that saw the flip
    assert since[updated.serial] == timedelta(0)  # status unchanged: since first seen


async def test_unapproved_credential_syncs_everything_but_site_status(
    resources: Resources, tenant_id: TenantId, make_runner: RunnerFactory
) -> None:
    sim = quiet_simulator(20)
    for site in sim.truth.sites()[:3]:
        site.status = "vacant"

    outcome = await make_runner(sim, "company_unapproved").run(tenant_id, SyncKind.FULL)

    assert outcome.state is SyncState.SUCCEEDED, outcome.error
    async with resources.session_factory() as session:
        assert await mirrored(session, tenant_id) == expected(sim, "company_unapproved", statuses=False)
        run = (await session.execute(select(SyncRun).where(SyncRun.id == outcome.run_id))).scalar_one()
    assert run.site_status_included is False
    assert outcome.plan is not None
    assert outcome.requests_used == outcome.plan.requests


async def test_with_the_rate_limit_on_the_sync_makes_exactly_the_planned_requests_and_no_429(
    resources: Resources, tenant_id: TenantId, make_runner: RunnerFactory
) -> None:
    sim = quiet_simulator(40, rate_limits_enabled=True, rate_limit_per_window=40, rate_limit_window_seconds=1.0)
    runner = make_runner(sim, limit=(40, 1.0))

    outcome = await runner.run(tenant_id, SyncKind.FULL)

    assert outcome.state is SyncState.SUCCEEDED, outcome.error
    await _check(resources, tenant_id, sim)
    assert outcome.plan is not None
    assert outcome.plan.eta_seconds is not None
    assert outcome.requests_used == outcome.plan.requests > 40  # more than one window's worth
    assert outcome.rate_limited == 0
    assert sim.truth.counters()["company"].throttled == 0


async def test_with_injected_5xx_and_429_the_sync_still_converges(
    resources: Resources, tenant_id: TenantId, make_runner: RunnerFactory
) -> None:
    sim = quiet_simulator(30, server_error_probability=0.1, gateway_timeout_probability=0.05)  # 15 % 5xx
    flaky = FlakyTransport(httpx.ASGITransport(app=sim.app), every=7)  # and every 7th request a 429
    runner = make_runner(sim, limit=(1000, 1.0), options=SyncOptions(page_size=25, concurrency=4), transport=flaky)

    outcome = await runner.run(tenant_id, SyncKind.FULL)

    assert outcome.state is SyncState.SUCCEEDED, outcome.error
    await _check(resources, tenant_id, sim)
    assert outcome.server_errors > 0
    assert outcome.rate_limited > 0
    assert outcome.plan is not None
    assert outcome.requests_used == outcome.plan.requests + outcome.server_errors + outcome.rate_limited


async def test_a_second_request_joins_the_running_sync(
    resources: Resources, tenant_id: TenantId, make_runner: RunnerFactory
) -> None:
    sim = quiet_simulator(30)
    running = asyncio.Event()
    runner = make_runner(sim, on_progress=lambda progress: running.set())

    full = asyncio.create_task(runner.run(tenant_id, SyncKind.FULL))
    await running.wait()  # the full sync holds the tenant's lock and is talking to upstream
    refresh = asyncio.create_task(runner.run(tenant_id, SyncKind.REFRESH))
    first, second = await asyncio.gather(full, refresh)

    assert first.state is second.state is SyncState.SUCCEEDED
    assert (first.joined, second.joined) == (False, True)
    assert first.run_id == second.run_id
    async with resources.session_factory() as session:
        runs = (await session.execute(select(func.count()).select_from(SyncRun))).scalar_one()
    assert runs == 1
    assert sim.truth.counters()["company"].requests == first.requests_used


@pytest.mark.parametrize(("kill_after", "stage"), [(8, "lists"), (30, "statuses")])
async def test_a_worker_killed_mid_sync_leaves_consistent_data_and_the_next_run_completes_it(
    resources: Resources, tenant_id: TenantId, make_runner: RunnerFactory, kill_after: int, stage: str
) -> None:
    sim = quiet_simulator(40)
    for site in sim.truth.sites()[::3]:
        site.status = "opted_out"
    options = SyncOptions(page_size=25, status_batch=5, concurrency=2)
    killer = FlakyTransport(httpx.ASGITransport(app=sim.app), kill_after=kill_after)

    with pytest.raises(asyncio.CancelledError):
        await make_runner(sim, options=options, transport=killer).run(tenant_id, SyncKind.FULL)

    want = expected(sim)
    async with resources.session_factory() as session:
        left = await mirrored(session, tenant_id)
        run = (await session.execute(select(SyncRun))).scalar_one()
    assert run.state is SyncState.RUNNING
    if stage == "lists":  # nothing half-written
        assert all(rows == {} for rows in left.values())
    else:  # every list complete; some site statuses still to fetch
        assert {k: v for k, v in left.items() if k != "sites"} == {k: v for k, v in want.items() if k != "sites"}
        assert left["sites"] != want["sites"]

    spy = FlakyTransport(httpx.ASGITransport(app=sim.app))
    resumed = await make_runner(sim, options=options, transport=spy).run(tenant_id, SyncKind.FULL)

    assert resumed.state is SyncState.SUCCEEDED, resumed.error
    assert resumed.run_id == run.id
    assert resumed.attempts == 2
    await _check(resources, tenant_id, sim)
    async with resources.session_factory() as session:
        assert (await session.execute(select(func.count()).select_from(SyncRun))).scalar_one() == 1
        inverters = (await session.execute(select(func.count()).select_from(Inverter))).scalar_one()
    assert inverters == len(want["inverters"])  # no duplicates
    if stage == "statuses":  # only site statuses are fetched again, and not those already checkpointed
        assert all(path.endswith("/status") for path in spy.paths)
        assert 0 < len(spy.paths) < len(want["sites"]) - 1


async def test_scheduled_syncs_spread_the_site_status_calls_over_the_cycle(
    resources: Resources, tenant_id: TenantId, make_runner: RunnerFactory
) -> None:
    sim = quiet_simulator(40)
    assert (await make_runner(sim).run(tenant_id, SyncKind.FULL)).state is SyncState.SUCCEEDED
    sites = sorted(expected(sim)["sites"])
    for site in sim.truth.sites():
        site.status = "opted_in"
    spread = make_runner(sim, options=SyncOptions(page_size=25, site_status_spread=4))
    per_run = -(-len(sites) // 4)

    outcomes = [await spread.run(tenant_id, SyncKind.REFRESH) for _ in range(4)]

    for outcome in outcomes:
        assert outcome.state is SyncState.SUCCEEDED, outcome.error
        assert outcome.plan is not None
        assert outcome.plan.steps["site_status"] == per_run
        assert outcome.requests_used == outcome.plan.requests
    await _check(resources, tenant_id, sim)  # every site checked once over the four runs
    assert sum(outcome.counts.updated for outcome in outcomes) == len(sites)


async def test_a_full_sync_asked_for_after_a_killed_refresh_completes_as_a_full_sync(
    resources: Resources, tenant_id: TenantId, make_runner: RunnerFactory
) -> None:
    sim = quiet_simulator(30)
    killer = FlakyTransport(httpx.ASGITransport(app=sim.app), kill_after=1)
    with pytest.raises(asyncio.CancelledError):
        await make_runner(sim, transport=killer).run(tenant_id, SyncKind.REFRESH)

    outcome = await make_runner(sim).run(tenant_id, SyncKind.FULL)

    assert outcome.state is SyncState.SUCCEEDED, outcome.error
    assert (outcome.kind, outcome.attempts) == (SyncKind.FULL, 2)
    await _check(resources, tenant_id, sim)


async def test_site_statuses_write_and_count_only_the_changed_sites(
    resources: Resources, tenant_id: TenantId, make_runner: RunnerFactory
) -> None:
    sim = quiet_simulator(10)
    outcome = await make_runner(sim).run(tenant_id, SyncKind.FULL)
    assert outcome.state is SyncState.SUCCEEDED, outcome.error
    async with resources.session_factory() as session:
        stored: dict[int, str | None] = dict((await session.execute(
            select(Site.upstream_id, Site.scheme_status).where(Site.tenant_id == tenant_id).order_by(Site.upstream_id)
        )).all())  # fmt: skip
    first, second, third = list(stored)[:3]
    flipped = "opted_out" if stored[second] == "opted_in" else "opted_in"
    now = utcnow()

    async with resources.session_factory() as session, session.begin():
        changed = await MirrorRepository(session, tenant_id).set_site_statuses(
            [(first, stored[first]), (second, flipped), (third, None if stored[third] else "vacant"), (10**12, "x")],
            now=now,
        )

    assert changed == 2  # the unchanged site's status is not rewritten; the site not stored is left alone
    async with resources.session_factory() as session:
        rows = {row.upstream_id: row for row in (await session.execute(
            select(Site.upstream_id, Site.scheme_status_checked_at, Site.changed_at)
            .where(Site.tenant_id == tenant_id, Site.upstream_id.in_([first, second, third]))
        )).all()}  # fmt: skip
    assert [rows[site].scheme_status_checked_at for site in (first, second, third)] == [now, now, now], (
        "every site checked records the check, changed or not")
    assert rows[first].changed_at != now
    assert rows[second].changed_at == rows[third].changed_at == now


async def test_a_full_sync_records_when_every_site_status_was_checked(
    resources: Resources, tenant_id: TenantId, make_runner: RunnerFactory
) -> None:
    sim = quiet_simulator(10)
    for _ in range(2):  # the second sync finds every status unchanged, and still records the check
        started = utcnow()
        outcome = await make_runner(sim).run(tenant_id, SyncKind.FULL)
        assert outcome.state is SyncState.SUCCEEDED, outcome.error
        async with resources.session_factory() as session:
            checked = (await session.execute(select(Site.scheme_status_checked_at).where(
                Site.tenant_id == tenant_id, Site.removed_at.is_(None)))).scalars().all()
        assert checked, "the simulator's fleet has sites"
        assert all(moment is not None and moment >= started for moment in checked), checked
