"""The demo set-up of `givfleet up`: a served simulator, a demo tenant with an admin key, a first sync."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import shutil
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from sqlalchemy import select

from service import demo
from service.core.clock import utcnow
from service.core.principal import Principal
from service.core.tenancy import tenant_id_from
from service.db.models.credential import CredentialHealth, UpstreamCredential
from service.db.models.mirror import Inverter, SyncKind, SyncSchedule, SyncState
from service.db.models.tenant import Tenant
from service.embedded import StartupError
from service.launcher import QuietServer, start_server
from service.mirror.jobs import sync_job_id
from service.mirror.runner import SyncOutcome, SyncRunner
from service.runtime import Resources
from service.settings import SimulatorSettings, SyncSettings
from service.simulator import Simulator
from service.tenants.crypto import key_file_path, load_key_ring
from service.tenants.demo import DEMO_SLUG, issue_demo_admin_key
from service.tenants.service import CredentialService, TenantService, open_token
from tests.simulator.conftest import client_factory
from tests.support import free_port


@pytest.fixture
def demo_resources(resources: Resources) -> Resources:
    settings = resources.settings.model_copy(
        update={"simulator": SimulatorSettings(fleet_size=12, seed=3, port=free_port()),
                "sync": SyncSettings(full_interval_seconds=7200, refresh_interval_seconds=600)}
    )
    return dataclasses.replace(resources, settings=settings)


async def test_demo_tenant_is_created_once_with_a_key_and_a_first_sync(
    demo_resources: Resources, clean_db: None
) -> None:
    assert await demo.simulator_wanted(demo_resources)
    simulator = demo.build_simulator(demo_resources)
    server, task = await start_server(QuietServer(simulator.config), "simulator")
    lines: list[str] = []
    try:
        await demo.prepare_demo_tenant(demo_resources, simulator, lines.append)
        await demo.prepare_demo_tenant(demo_resources, simulator, lines.append)
    finally:
        server.should_exit = True
        await task
    first_key = await issue_demo_admin_key(demo_resources)
    assert first_key is not None
    assert await issue_demo_admin_key(demo_resources) is None, "the admin key is made (and printed) once only"
    visible = len(simulator.simulator.truth.visible_devices("company"))
    assert f"({visible} inverters on the demo account)" in lines[0]
    box = demo.banner("http://127.0.0.1:8000", first_key)
    assert box[0].startswith("╭")
    assert box[3].startswith("╰")
    assert first_key in box[2]
    assert box[-2] == f'  curl -s http://127.0.0.1:8000/api/v1/fleet/summary -H "Authorization: Bearer {first_key}"'
    assert box[-1].startswith(f'  curl -s http://127.0.0.1:8000/graphql -H "Authorization: Bearer {first_key}"')
    assert any("givfleet apikey create --tenant demo" in line for line in demo.banner("http://x", None))
    async with demo_resources.session_factory() as session:
        tenant = (await session.execute(select(Tenant).where(Tenant.slug == "demo"))).scalar_one()
        credential = (await session.execute(select(UpstreamCredential))).scalar_one()
        schedule = (await session.execute(select(SyncSchedule))).scalar_one()
    assert credential.base_url == simulator.base_url
    assert schedule.tenant_id == tenant.id
    assert schedule.full_interval_seconds == demo_resources.settings.sync.full_interval_seconds
    assert schedule.refresh_interval_seconds == demo_resources.settings.simulator.refresh_interval_seconds
    assert schedule.next_full_at is not None
    job_id = f"{demo_resources.redis.namespace}:{sync_job_id(tenant_id_from(tenant.id), SyncKind.FULL)}"
    assert await demo_resources.redis.exists(f"arq:job:{job_id}") == 1
    await demo_resources.redis.delete(f"arq:job:{job_id}", demo_resources.redis.queue("bulk"))


async def test_a_real_credential_keeps_the_simulator_on_while_the_demo_uses_it(
    demo_resources: Resources, clean_db: None
) -> None:
    async def add_credential(slug: str, base_url: str | None) -> None:
        async with demo_resources.session_factory() as session, session.begin():
            tenant = await TenantService(session).create(slug, actor="test")
            principal = Principal.cli(tenant_id_from(tenant.id), actor="test")
            await CredentialService(session, principal, load_key_ring(demo_resources.settings)).add(
                f"{slug}-token", label=slug, base_url=base_url)

    await add_credential("acme", None)
    assert not await demo.simulator_wanted(demo_resources), "a real credential alone: no simulator"
    await add_credential("demo", demo.simulator_base_url(demo_resources.settings))
    assert await demo.simulator_wanted(demo_resources), "the demo credential still points at the simulator"
    assert str(await demo.describe_upstreams(demo_resources)) == (
        f"acme -> GivEnergy Cloud; demo -> the bundled simulator "
        f"({demo.simulator_base_url(demo_resources.settings)})")

    forced = demo_resources.settings.model_copy(update={"simulator": SimulatorSettings(enabled=False)})
    assert not await demo.simulator_wanted(dataclasses.replace(demo_resources, settings=forced))


@contextlib.asynccontextmanager
async def demo_up(resources: Resources, seed: int) -> AsyncIterator[demo.DemoSimulator]:
    """What `givfleet up` does for the demo, with a fleet of a seed: the kept cloud, served, and the demo tenant."""
    settings = resources.settings.model_copy(update={
        "simulator": resources.settings.simulator.model_copy(update={"seed": seed})})
    at_seed = dataclasses.replace(resources, settings=settings)
    simulator = demo.build_simulator(at_seed)
    async with simulator.kept_cloud():
        server, task = await start_server(QuietServer(simulator.config), "simulator")
        try:
            await demo.prepare_demo_tenant(at_seed, simulator, lambda _: None)
            yield simulator
        finally:
            server.should_exit = True
            await task


async def demo_sync(resources: Resources) -> SyncOutcome:
    """A full sync of the demo tenant, as the worker runs the one `up` asks for."""
    async with resources.session_factory() as session:
        tenant = (await session.execute(select(Tenant).where(Tenant.slug == "demo"))).scalar_one()
    runner = SyncRunner(resources.engine, resources.session_factory, resources.upstream.sync_target)
    return await runner.run(tenant_id_from(tenant.id), SyncKind.FULL)


async def test_the_demo_syncs_after_the_seed_changes_on_a_home(demo_resources: Resources, tmp_path: Path,
                                                               clean_db: None) -> None:
    home = at_home(demo_resources, tmp_path)
    load_key_ring(demo_resources.settings)  # its key file made, for the syncs' upstream (of the run's home) to share
    shutil.copy(key_file_path(demo_resources.settings), key_file_path(home.settings))
    async with demo_up(home, seed=3):
        assert (await demo_sync(home)).state is SyncState.SUCCEEDED
    for seed in (4, 3):  # another fleet, then the first one generated afresh
        async with demo_up(home, seed=seed) as served:
            outcome = await demo_sync(home)
            assert outcome.state is SyncState.SUCCEEDED, outcome.error
            async with home.session_factory() as session:
                credential = (await session.execute(select(UpstreamCredential))).scalar_one()
                mirrored = set((await session.execute(select(Inverter.serial))).scalars())
            assert credential.health is CredentialHealth.OK
            assert open_token(load_key_ring(home.settings), credential).get_secret_value() == (
                served.simulator.tokens["company"])
            assert mirrored >= set(served.simulator.truth.visible_serials("company")), "the served fleet is mirrored"
    assert str(await demo.describe_upstreams(home)) == f"demo -> the bundled simulator ({served.base_url})"


async def _tenant_with_a_credential(resources: Resources, slug: str, *, refused: bool) -> None:
    async with resources.session_factory() as session, session.begin():
        tenant = await TenantService(session).create(slug, actor="test")
        credentials = CredentialService(session, Principal.cli(tenant_id_from(tenant.id), actor="test"),
                                        load_key_ring(resources.settings))
        credential = await credentials.add(f"{slug}-token", label=slug)
        if refused:
            credential.health, credential.health_message = CredentialHealth.UNAUTHORISED, "Unauthenticated. (HTTP 401)"


async def test_a_tenant_whose_credentials_are_all_refused_is_named(demo_resources: Resources,
                                                                   clean_db: None) -> None:
    await _tenant_with_a_credential(demo_resources, "acme", refused=True)
    upstreams = await demo.describe_upstreams(demo_resources)
    assert [str(tenant) for tenant in upstreams.refused] == [
        "acme -> GivEnergy Cloud, credential unauthorised: Unauthenticated. (HTTP 401)"]
    assert upstreams.failing, "no tenant can sync"


async def test_refusals_fail_only_when_they_stop_givfleet_itself(demo_resources: Resources, clean_db: None) -> None:
    await _tenant_with_a_credential(demo_resources, "acme", refused=True)
    await _tenant_with_a_credential(demo_resources, "globex", refused=False)
    one_customer = await demo.describe_upstreams(demo_resources)
    await _tenant_with_a_credential(demo_resources, DEMO_SLUG, refused=True)
    and_the_demo = await demo.describe_upstreams(demo_resources)

    assert [tenant.slug for tenant in one_customer.refused] == ["acme"]
    assert not one_customer.failing, "acme's revoked token is acme's to replace: globex syncs"
    assert [tenant.slug for tenant in and_the_demo.refused] == ["acme", DEMO_SLUG]
    assert and_the_demo.failing, "the demo tenant's credential is givfleet's own"


def test_the_demo_fleet_is_worth_looking_at(resources: Resources) -> None:
    settings = resources.settings.model_copy(update={"simulator": SimulatorSettings()})  # what `up` serves
    simulator = demo.build_simulator(dataclasses.replace(resources, settings=settings)).simulator
    devices = simulator.truth.visible_devices("company")
    statuses = Counter(device.status for device in devices)
    assert statuses["ERROR"] + statuses["WARNING"] >= 5
    assert 2 <= statuses["LOST"] <= len(devices) // 5
    assert len({device.arm for device in devices}) >= 5, "firmware spread across versions"
    faulted = [device.serial for device in devices if device.status in {"ERROR", "WARNING"}]
    assert all(simulator.truth.events(serial) for serial in faulted), "every fault comes with its events"

    before = {device.serial: device.status for device in devices}
    simulator.clock.advance(timedelta(minutes=30))  # half an hour of `up`
    after = {device.serial: device.status for device in simulator.truth.visible_devices("company")}
    assert before != after, "the fleet changes while `up` runs, so refreshes record history"


def at_home(demo_resources: Resources, home: Path) -> Resources:
    return dataclasses.replace(demo_resources, settings=demo_resources.settings.model_copy(update={"home": home}))


def past(simulator: Simulator, before: datetime) -> list[tuple[str, str, datetime, datetime | None]]:
    """The fault events that ended before a time, as the cloud reports them."""
    return [(event.serial, event.event, event.start_time, event.end_time) for event in simulator.truth.events()
            if event.end_time is not None and event.end_time <= before]


def writable(simulator: Simulator) -> list[str]:
    """The demo account's inverters that apply a setting written to them."""
    return [device.serial for device in simulator.truth.visible_devices("company")
            if device.controllable and not (device.locked or device.another_actor)
            and device.status in ("NORMAL", "WAITING")]


async def test_the_demo_cloud_carries_on_across_restarts_on_a_home(demo_resources: Resources, tmp_path: Path) -> None:
    home = at_home(demo_resources, tmp_path)
    first = demo.build_simulator(home)
    sim = first.simulator
    written, faulted, lost = writable(sim)[:3]
    async with first.kept_cloud():
        async with client_factory(sim)("company") as api:  # what a campaign does
            answer = await api.post(f"/inverter/{written}/settings/71/write", json={"value": 10, "context": "t"})
        assert answer.json()["data"]["success"], answer.text
        async with client_factory(sim)(None, base="http://sim/_simulator") as door:
            await door.post("/faults", json={"serials": [faulted], "event": "Isolation fault",
                                             "duration_seconds": 86400})
            await door.post("/lost", json={"serials": [lost], "duration_seconds": 86400})
            await door.post("/clock/advance", json={"seconds": 60})  # a move of the clock: a snapshot at once
        shown = sim.clock.now()
        history = past(sim, shown)
        after_a_kill = demo.build_simulator(home).simulator  # the run killed now: its last snapshot is all there is
        last = sim.clock.now()
    after_a_stop = demo.build_simulator(home).simulator
    for resumed, seen in ((after_a_kill, shown), (after_a_stop, last)):
        assert resumed.truth.setting(written, 71) == 10, "the campaign's write is still there"
        assert [event.event for event in resumed.truth.events(faulted) if event.end_time is None] == [
            "Isolation fault"]
        assert resumed.truth.device(faulted).status == "ERROR"
        assert resumed.truth.device(lost).status == "LOST"
        assert past(resumed, shown) == history, "the history did not move"
        assert resumed.clock.now() >= seen, "the clock did not go back"
    assert history, "a week of history to compare"


async def test_a_campaigns_writes_are_kept_within_seconds(demo_resources: Resources, tmp_path: Path) -> None:
    home = at_home(demo_resources, tmp_path)
    kept = demo.build_simulator(home)
    sim = kept.simulator
    serials = writable(sim)[:2]
    async with kept.kept_cloud():
        async with client_factory(sim)("company") as api:  # a campaign's writes, no move of the clock
            for serial in serials:
                answer = await api.post(f"/inverter/{serial}/settings/71/write", json={"value": 10, "context": "t"})
                assert answer.json()["data"]["success"], answer.text
        deadline = asyncio.get_running_loop().time() + 10  # generous: the snapshot is due within about a second
        while True:  # what the next up would resume if this one were killed now
            resumed = demo.build_simulator(home).simulator
            if all(resumed.truth.setting(serial, 71) == 10 for serial in serials):
                break
            assert asyncio.get_running_loop().time() < deadline, "the writes never reached the kept cloud"
            await asyncio.sleep(0.1)


async def test_a_snapshot_that_cannot_be_taken_is_logged_and_the_demo_goes_on(
        demo_resources: Resources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kept = demo.build_simulator(at_home(demo_resources, tmp_path))
    sim = kept.simulator

    def broken(ahead: timedelta) -> object:
        raise OverflowError("date value out of range")

    async with kept.kept_cloud():
        with monkeypatch.context() as patched, structlog.testing.capture_logs() as logs:
            patched.setattr(sim, "snapshot", broken)
            moved_to = sim.clock.advance(timedelta(seconds=60))  # a move of the clock: a snapshot at once
    assert [(entry["event"], entry["error"]) for entry in logs if entry["log_level"] == "warning"] == [
        ("demo_cloud.not_kept", "date value out of range")]
    assert demo.build_simulator(at_home(demo_resources, tmp_path)).simulator.clock.now() >= moved_to, (
        "the snapshot taken when the demo stopped has the move")


async def test_the_demo_clock_keeps_its_lead_across_restarts(demo_resources: Resources, tmp_path: Path) -> None:
    home = at_home(demo_resources, tmp_path)
    first = demo.build_simulator(home)
    async with first.kept_cloud():
        first.simulator.clock.advance(timedelta(days=3))  # the side door moved it ahead of the wall clock
        shown = first.simulator.clock.now()
        after_a_kill = demo.build_simulator(home)
        last = first.simulator.clock.now()
    assert after_a_kill.simulator.clock.now() >= shown
    assert demo.build_simulator(home).simulator.clock.now() >= last
    assert last - utcnow() > timedelta(days=2), "the second start resumed the simulated time, ahead of the wall clock"


def test_the_demo_clock_runs_in_real_time(demo_resources: Resources, tmp_path: Path) -> None:
    simulator = demo.build_simulator(at_home(demo_resources, tmp_path)).simulator
    assert simulator.clock.speed == 1, "the demo's times keep in step with givfleet's"
    assert simulator.clock.now() <= utcnow()


async def test_a_snapshot_of_another_fleet_is_not_used(demo_resources: Resources, tmp_path: Path) -> None:
    other = at_home(demo_resources, tmp_path).settings.simulator.model_copy(update={"seed": 4})
    foreign = demo.build_simulator(dataclasses.replace(demo_resources, settings=demo_resources.settings.model_copy(
        update={"home": tmp_path, "simulator": other})))
    foreign.simulator.inject_fault([foreign.simulator.fleet.devices[0].serial], "Isolation fault")
    async with foreign.kept_cloud():
        pass
    with structlog.testing.capture_logs() as logs:  # whatever logging an earlier test configured
        fresh = demo.build_simulator(at_home(demo_resources, tmp_path)).simulator
    assert fresh.tokens["company"] != foreign.simulator.tokens["company"], "the configured seed's fleet, generated"
    assert [log["reason"] for log in logs if log["event"] == "demo_cloud.not_resumed"] == [
        "written for another world: seed 4 (not 3)"]
    assert fresh.truth.summary() == Simulator(fresh.config).truth.summary()


async def test_a_fleet_replacing_another_starts_no_earlier(demo_resources: Resources, tmp_path: Path) -> None:
    other = demo_resources.settings.simulator.model_copy(update={"seed": 4})
    foreign = demo.build_simulator(dataclasses.replace(demo_resources, settings=demo_resources.settings.model_copy(
        update={"home": tmp_path, "simulator": other})))
    async with foreign.kept_cloud():
        foreign.simulator.clock.advance(timedelta(days=3))  # its times, ahead of the wall clock, were shown
        shown = foreign.simulator.clock.now()
    fresh = demo.build_simulator(at_home(demo_resources, tmp_path)).simulator
    assert fresh.tokens["company"] != foreign.simulator.tokens["company"], "a new fleet"
    assert fresh.clock.now() >= shown, "its clock did not go back"


async def test_the_demo_cloud_is_kept_small_and_private(demo_resources: Resources, tmp_path: Path) -> None:
    kept = demo.build_simulator(at_home(demo_resources, tmp_path))
    async with kept.kept_cloud():
        kept.simulator.clock.advance(timedelta(days=60))
        now = kept.simulator.clock.now()
    assert (tmp_path / demo.CLOUD_FILE).stat().st_mode & 0o777 == 0o600, "it holds the simulator's tokens"
    resumed = demo.build_simulator(at_home(demo_resources, tmp_path)).simulator
    kept_since = now - timedelta(days=kept.simulator.config.history_days) - demo.KEPT_BEYOND_HISTORY
    events = resumed.truth.events()
    assert events, "recent events are kept"
    assert all(event.end_time is None or event.end_time >= kept_since for event in events), "older ones are not"


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda cloud: cloud.update(reached="2026-01-01T00:00:00"),
     "not of the expected shape (TypeError: expected a time with a timezone, got '2026-01-01T00:00:00')"),
    (lambda cloud: cloud["behaviour"]["events"].update(NOPE=[{
        "serial": "NOPE", "event": "Isolation fault", "severity": "ERROR", "start_time": cloud["reached"],
        "end_time": None}]),
     "inconsistent: KeyError: 'NOPE'"),
])
async def test_an_inconsistent_demo_cloud_is_named(demo_resources: Resources, tmp_path: Path,
                                                   damage: Callable[[dict[str, Any]], None], reason: str) -> None:
    home = at_home(demo_resources, tmp_path)
    async with demo.build_simulator(home).kept_cloud():
        pass
    cloud = json.loads((tmp_path / demo.CLOUD_FILE).read_text(encoding="utf-8"))
    damage(cloud)
    (tmp_path / demo.CLOUD_FILE).write_text(json.dumps(cloud), encoding="utf-8")
    with pytest.raises(StartupError) as refused:
        demo.build_simulator(home)
    assert str(refused.value) == (
        f"the demo cloud snapshot {tmp_path / demo.CLOUD_FILE} is unreadable ({reason}): delete it, and the demo "
        "starts afresh with a newly generated fleet")


def test_an_unreadable_demo_cloud_is_named(demo_resources: Resources, tmp_path: Path) -> None:
    (tmp_path / demo.CLOUD_FILE).write_text('{"format": 2, "seed": 3, "fleet_size": 12, "reached": "yesterday"}',
                                            encoding="utf-8")
    with pytest.raises(StartupError) as refused:
        demo.build_simulator(at_home(demo_resources, tmp_path))
    assert str(refused.value) == (
        f"the demo cloud snapshot {tmp_path / demo.CLOUD_FILE} is unreadable (Invalid isoformat string: "
        "'yesterday'): delete it, and the demo starts afresh with a newly generated fleet")
