"""A real worker killed with SIGKILL while a campaign's write is on the wire, then a restarted worker: the lost
answer is resolved by reading, and no inverter is written twice (the simulator's control log is the judge)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from service.campaigns.jobs import resume_stale
from service.core.clock import utcnow
from service.core.principal import Principal
from service.db.models.campaign import CampaignChunk, CampaignState, ChunkKind, ChunkState, TargetState
from service.jobs.enqueue import unit_of_work
from service.jobs.typed import Queue
from service.runtime import Resources, redis_client
from service.settings import CampaignSettings, RedisSettings, Settings
from service.tenants.crypto import load_key_ring
from service.tenants.service import CredentialService
from service.upstream import Upstream
from service.worker.build import drain_queues
from tests.campaigns.conftest import Served, World, sync_mirror
from tests.tenants.factories import committed_tenant

RESERVE = 71


def start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GIVFLEET_DATABASE_URL": settings.configured_database_url() or "",
           "GIVFLEET_REDIS_URL": settings.configured_redis_url() or "",
           "GIVFLEET_REDIS__NAMESPACE": settings.redis.namespace, "GIVFLEET_HOME": str(settings.home),
           "GIVFLEET_CAMPAIGNS__LEASE_SECONDS": "1", "GIVFLEET_LOG__LEVEL": "WARNING"}
    givfleet = Path(sys.executable).with_name("givfleet")
    return subprocess.Popen([str(givfleet), "worker"], env=env, stdout=subprocess.DEVNULL,  # noqa: S603
                            stderr=subprocess.DEVNULL)


async def test_sigkill_mid_write_then_restart_writes_no_inverter_twice(
        resources: Resources, clean_db: None, served: Served) -> None:
    sim, gate, base_url = served.sim, served.gate, served.base_url
    gate.nth = 2
    tenant = await committed_tenant(resources)
    async with resources.session_factory() as session, session.begin():
        await CredentialService(session, Principal.cli(tenant.tenant_id), load_key_ring(resources.settings)).add(
            sim.tokens["company"], label="simulator", base_url=base_url, requests_per_minute=6000)
    await sync_mirror(resources, sim, tenant.tenant_id)
    world = World(resources, sim, tenant.tenant_id, tenant.key_id)
    campaign_id = await world.create({"name": "reserve 33", "setting_id": RESERVE, "value": 33,
                                      "waves": {"canary_size": 5, "growth_factor": 2, "max_wave_size": 10}})

    worker = start_worker(resources.settings)
    try:
        await world.act("start", campaign_id)
        await asyncio.wait_for(gate.arrived.wait(), timeout=120)
        worker.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(worker.wait, 30) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
    async with resources.session_factory() as session:
        lost = (await session.execute(select(CampaignChunk).where(
            CampaignChunk.campaign_id == campaign_id, CampaignChunk.state == ChunkState.SENDING))).scalar_one()
    assert lost.kind is ChunkKind.WRITE  # recorded as on the wire before the request left
    gate.release.set()
    await asyncio.wait_for(gate.applied.wait(), timeout=30)  # the cloud applied it; nobody heard the answer
    wave_two = set(lost.serials)
    assert {sim.truth.setting(serial, RESERVE) for serial in wave_two} == {33}

    # Restart: the sweeper (here with no grace period) starts a new tick chain; a fresh queue lets a burst
    # worker tell when it is done (the killed tick stays in the old queue until its job times out, then stops
    # as a superseded tick).
    settings = resources.settings.model_copy(update={
        "redis": RedisSettings(namespace=f"{resources.settings.redis.namespace}-restart"),
        "campaigns": CampaignSettings(lease_seconds=1)})
    redis = redis_client(settings.configured_redis_url() or "", settings)
    restarted = Resources(settings=settings, engine=resources.engine, session_factory=resources.session_factory,
                          redis=redis, upstream=Upstream(settings, redis, resources.session_factory))
    try:
        async with unit_of_work(restarted.session_factory, restarted.redis) as session:
            assert await resume_stale(session, utcnow(), timedelta(0)) == [campaign_id]
        await drain_queues(restarted, [Queue.CONTROL])
    finally:
        await restarted.redis.aclose()

    campaign = await world.campaign(campaign_id)
    assert campaign.state is CampaignState.COMPLETED
    targets = await world.targets(campaign_id)
    acted = [serial for serial, target in targets.items() if target.state is not TargetState.EXCLUDED]
    assert {targets[serial].state for serial in acted} == {TargetState.APPLIED}
    assert {sim.truth.setting(serial, RESERVE) for serial in acted} == {33}
    written = Counter(call.serial for call in world.writes(RESERVE))
    assert sorted(written) == sorted(acted)
    assert set(written.values()) == {1}  # the lost answer was resolved by reading: nobody written twice
    assert campaign.rewrites == 0
