"""Campaign figures: write one setting to N simulated inverters in waves of 1,000, verify it, and compare.

Usage::

    .venv/bin/python bench/campaign.py [--inverters 10000] [--database-url postgresql://...] [--redis-url ...]

A fresh database (created, migrated, dropped), a simulated fleet served in-process (rate limit off), a tenant
whose mirror is synced from it and whose stored credential the campaign uses (through the shared limiter, campaign
lane). The campaign writes setting 71 (Battery Reserve % Limit) = 10 to exactly N inverters that offer it, in
waves of 1,000 (canary 1,000, growth 1): per wave one multi-control read, one write, one read-back.

Printed: the plan (waves, request cost, ETA at the limiter's capacity and at the real 300/min tier), the run's
wall time, and a last line::

    campaign inverters=N requests=R naive_requests=2N max_writes_per_inverter=W equal_to_ground_truth=yes wall_s=T

``requests`` counts the campaign's upstream requests (the one-off setting-catalogue reads of planning are
printed separately); ``naive_requests`` is a loop of single writes and single read-backs; ``max_writes_per_inverter``
comes from the simulator's control log; ``equal_to_ground_truth`` says every inverter's stored value and the
campaign's per-inverter outcome agree with the simulator.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

ROOT = Path(__file__).resolve().parents[1]
# The repository root instead of this script's directory, where bench/graphql.py would shadow graphql-core.
sys.path[0] = str(ROOT)

from service.campaigns.engine import CampaignEngine  # noqa: E402
from service.campaigns.schemas import CampaignSpec  # noqa: E402
from service.campaigns.service import CampaignService, prepare  # noqa: E402
from service.changefeed import publisher  # noqa: E402
from service.core.principal import Principal  # noqa: E402
from service.core.roles import Role  # noqa: E402
from service.core.tenancy import TenantId, tenant_id_from  # noqa: E402
from service.db import migrate  # noqa: E402
from service.db.models.campaign import Campaign, CampaignTarget, TargetState  # noqa: E402
from service.db.models.mirror import SyncKind  # noqa: E402
from service.db.models.tenant import Tenant  # noqa: E402
from service.jobs.enqueue import unit_of_work  # noqa: E402
from service.mirror.runner import SyncOptions, SyncRunner  # noqa: E402
from service.mirror.upstream import UpstreamTarget  # noqa: E402
from service.runtime import Resources  # noqa: E402
from service.settings import RedisSettings, Settings  # noqa: E402
from service.simulator import Simulator, SimulatorConfig  # noqa: E402
from service.tenants.crypto import load_key_ring  # noqa: E402
from service.tenants.service import CredentialService  # noqa: E402
from service.upstream import Route  # noqa: E402
from tests.conftest import create_database, drop_database  # noqa: E402

SETTING, VALUE = 71, 10
REAL_TIER = 300
BASE_URL = "http://simulator.bench/v1"


async def _tenant(resources: Resources, sim: Simulator, token: str) -> TenantId:
    async with resources.session_factory() as session, session.begin():
        tenant = Tenant(slug="bench-campaign", name="Bench (campaign)")
        session.add(tenant)
        await session.flush()
        tenant_id = tenant_id_from(tenant.id)
        await CredentialService(session, Principal.cli(tenant_id), load_key_ring(resources.settings)).add(
            token, label="simulator", base_url=BASE_URL, requests_per_minute=REAL_TIER * 100)

    async def resolve(session: AsyncSession, tenant: TenantId) -> UpstreamTarget:
        return UpstreamTarget(token=SecretStr(token), base_url=BASE_URL,
                              transport=httpx.ASGITransport(app=sim.app), timeout=120.0)

    started = time.perf_counter()
    await SyncRunner(resources.engine, resources.session_factory, resolve,
                     SyncOptions(page_size=1000, concurrency=8)).run(tenant_id, SyncKind.FULL)
    print(f"mirror synced in {time.perf_counter() - started:.1f} s")
    return tenant_id


async def bench(inverters: int, server_url: str, redis_url: str) -> str:
    name = f"givfleet_bench_campaign_{uuid.uuid4().hex[:8]}"
    url = await create_database(server_url, name)
    resources: Resources | None = None
    try:
        await migrate.upgrade(url)
        home = Path(os.environ.get("TMPDIR", "/tmp")) / name  # noqa: S108 - a scratch key file for this run
        settings = Settings(_env_file=None, home=home, database_url=SecretStr(url), redis_url=SecretStr(redis_url),
                            redis=RedisSettings(namespace=f"bench-{uuid.uuid4().hex[:8]}"))
        resources = Resources.open(settings)
        # ~6 % of a fleet (gateways, EMS) offers no battery reserve: generate enough to find N that do.
        sim = Simulator(SimulatorConfig.quiet(fleet_size=math.ceil(inverters * 1.1) + 50, seed=7,
                                              rate_limits_enabled=False))
        serials = sorted(s for s in sim.truth.visible_serials("distributor")
                         if SETTING in sim.truth.settings(s))[:inverters]
        if len(serials) < inverters:
            raise SystemExit(f"the simulated fleet has only {len(serials)} inverters offering setting {SETTING}")
        # The whole fleet, without the approved-user badge: the sync then skips per-site status reads.
        distributor = sim.truth.account_of_token("distributor").id
        tenant_id = await _tenant(resources, sim, sim.create_token(distributor, name="bench", approved=False))
        principal = Principal(tenant_id=tenant_id, role=Role.ADMIN, key_id=uuid.uuid4(), actor="bench")
        resources.upstream.route = Route(transport=httpx.ASGITransport(app=sim.app), base_url=BASE_URL)
        clients = resources.upstream
        spec = CampaignSpec.model_validate({
            "name": "bench reserve", "setting_id": SETTING, "value": VALUE, "targets": {"serials": serials},
            "waves": {"canary_size": 1000, "growth_factor": 1, "max_wave_size": 1000}})
        preparation = await prepare(resources.session_factory, clients, principal, spec)
        async with unit_of_work(resources.session_factory, resources.redis) as session:
            campaign, plan = await CampaignService(session, principal).create(spec, preparation)
            campaign_id = campaign.id
        view = plan.view
        print(f"plan: {view.targets} targets in {len(view.waves)} waves, {view.requests} requests; "
              f"setting catalogue learnt with {view.catalogue_requests} reads (once per model/firmware); "
              f"ETA {view.eta_seconds:.0f} s at the lane's capacity ({view.requests_per_minute}/min)")
        print(f"ETA at the real {REAL_TIER}/min tier: {view.requests / REAL_TIER * 60:.0f} s "
              f"({view.requests} requests; a naive loop needs {2 * inverters} = "
              f"{2 * inverters / REAL_TIER:.0f} min)")
        approver = Principal(tenant_id=tenant_id, role=Role.ADMIN, key_id=uuid.uuid4(), actor="bench approver")
        async with unit_of_work(resources.session_factory, resources.redis) as session:
            await CampaignService(session, approver).approve(campaign_id)  # above the 500-inverter threshold
            await CampaignService(session, principal).start(campaign_id)
        log_start = len(sim.control_log)
        started = time.perf_counter()
        outcomes = await CampaignEngine(resources.session_factory, clients, clock=sim.now,
                                        publish=publisher(resources.redis)).run(campaign_id)
        wall = time.perf_counter() - started
        async with resources.session_factory() as session:
            campaign = (await session.execute(select(Campaign).where(Campaign.id == campaign_id))).scalar_one()
            targets = (await session.execute(select(CampaignTarget.serial, CampaignTarget.state).where(
                CampaignTarget.campaign_id == campaign_id))).all()
        writes = Counter(call.serial for call in sim.control_log[log_start:] if call.action == "multi-write")
        equal = (campaign.state.value == "completed" and len(targets) == inverters
                 and all(state is TargetState.APPLIED for _, state in targets)
                 and all(sim.truth.setting(serial, SETTING) == VALUE for serial, _ in targets))
        print(f"run: {len(outcomes)} ticks, state {campaign.state.value}, {campaign.wave_count} waves, "
              f"rewrites {campaign.rewrites}")
        return (f"campaign inverters={inverters} requests={campaign.requests_used} naive_requests={2 * inverters} "
                f"max_writes_per_inverter={max(writes.values(), default=0)} "
                f"equal_to_ground_truth={'yes' if equal else 'no'} wall_s={wall:.1f}")
    finally:
        if resources is not None:
            await resources.aclose()
        await drop_database(server_url, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inverters", type=int, default=10_000)
    parser.add_argument("--database-url",
                        default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis-url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    print(asyncio.run(bench(args.inverters, args.database_url, args.redis_url)))


if __name__ == "__main__":
    main()
