"""Mirror figures: full-sync wall time and rows written per second for 10,000 and 50,000 inverters.

Usage::

    .venv/bin/python bench/mirror.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
                                     [--redis-url redis://127.0.0.1:6379/0] [--sizes 10000 50000]

For each size: a fresh database (created, migrated, dropped), a simulated fleet served in-process (ASGI
transport, rate limit off and no client limiter, so the figure measures givfleet: fetching, parsing,
reconciling and writing), the ``distributor`` token (the whole fleet) and an approved credential, so site
statuses are fetched too (one request per site). Then a second full sync (no upstream change: zero rows
written), a refresh, and a refresh after 1 % of the inverters changed status.

Printed per size: requests (== plan), wall time, rows written, rows/s overall and of the write phase, whether
the mirror equals the simulator's ground truth; and, for ``--limited`` (10,000 by default), a full sync with the
simulator's rate limit on (scaled to ``--limit`` requests per ``--window`` seconds) through the shared limiter:
requests == plan and zero 429s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

import httpx
from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.core.tenancy import TenantId, tenant_id_from  # noqa: E402
from service.db import migrate  # noqa: E402
from service.db.models.mirror import SyncKind, SyncRun  # noqa: E402
from service.db.models.tenant import Tenant  # noqa: E402
from service.givenergy import RateLimiter  # noqa: E402
from service.mirror.runner import SyncOptions, SyncOutcome, SyncRunner  # noqa: E402
from service.runtime import Resources  # noqa: E402
from service.settings import RedisSettings, Settings, asyncpg_url  # noqa: E402
from service.simulator import Simulator, SimulatorConfig  # noqa: E402
from service.upstream import UpstreamTarget  # noqa: E402
from tests.mirror.truth import expected, mirrored  # noqa: E402


async def _admin(server_url: str, statement: str) -> None:
    engine = create_async_engine(asyncpg_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def _report(resources: Resources, label: str, outcome: SyncOutcome, seconds: float) -> None:
    rows = outcome.counts.written + outcome.counts.history
    planned = outcome.plan.requests if outcome.plan is not None else "?"
    rate = f"{rows / seconds:,.0f} rows/s" if rows else "-"
    print(
        f"  {label:<28} {seconds:8.2f} s  requests {outcome.requests_used:>6} (plan {planned}, 429s "
        f"{outcome.rate_limited})  rows written {rows:>8,}  {rate} overall"
    )
    async with resources.session_factory() as session:
        progress = (await session.execute(select(SyncRun.progress).where(SyncRun.id == outcome.run_id))).scalar_one()
    phases = progress.seconds
    if phases:
        write = phases.get("write", 0.0)
        write_rate = f", {rows / write:,.0f} rows/s" if write and rows else ""
        print(
            f"  {'':<28} lists: fetch {phases.get('fetch', 0):.2f} s, load {phases.get('load', 0):.2f} s, "
            f"reconcile {phases.get('reconcile', 0):.2f} s, write {write:.2f} s{write_rate}; "
            f"site statuses {outcome.plan.steps.get('site_status', 0) if outcome.plan else 0} requests"
        )


async def _limited(resources: Resources, size: int, limit: tuple[int, float]) -> None:
    """A full sync with the simulator's rate limit on (scaled window) and the shared limiter in front."""
    sim = Simulator(
        SimulatorConfig.quiet(
            fleet_size=size, seed=7, rate_limits_enabled=True, rate_limit_per_window=limit[0],
            rate_limit_window_seconds=limit[1],
        )
    )  # fmt: skip
    async with resources.session_factory() as session, session.begin():
        tenant = Tenant(slug="bench-limited", name="Bench (rate limited)")
        session.add(tenant)
        await session.flush()
        tenant_id: TenantId = tenant_id_from(tenant.id)
    budget = RateLimiter(resources.redis, namespace=resources.settings.redis.namespace).credential(
        "bench-limited", requests_per_minute=limit[0], window_seconds=limit[1]
    )

    async def resolve(session: AsyncSession, tenant: TenantId) -> UpstreamTarget:
        return UpstreamTarget(
            token=SecretStr(sim.tokens["distributor"]),
            base_url="http://simulator.bench/v1",
            transport=httpx.ASGITransport(app=sim.app),
            limiter=budget,
            timeout=120.0,
        )

    runner = SyncRunner(resources.engine, resources.session_factory, resolve, SyncOptions(page_size=1000))
    started = time.perf_counter()
    outcome = await runner.run(tenant_id, SyncKind.FULL)
    seconds = time.perf_counter() - started
    label = f"full sync, limit {limit[0]}/{limit[1]:g}s"
    await _report(resources, label, outcome, seconds)
    async with resources.session_factory() as session:
        equal = await mirrored(session, tenant_id) == expected(sim, "distributor")
    throttled = sim.truth.counters()["distributor"].throttled
    print(f"  {'':<28} equal to ground truth: {'yes' if equal else 'NO'}; 429s seen by the simulator: {throttled}")


async def bench(size: int, server_url: str, redis_url: str, limited: tuple[int, float] | None = None) -> None:
    name = f"givfleet_bench_mirror_{uuid.uuid4().hex[:8]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    url = asyncpg_url(server_url).rsplit("/", 1)[0] + f"/{name}"
    resources: Resources | None = None
    try:
        await migrate.upgrade(url)
        settings = Settings(
            _env_file=None,
            database_url=SecretStr(url),
            redis_url=SecretStr(redis_url),
            redis=RedisSettings(namespace=f"bench-{uuid.uuid4().hex[:8]}"),
        )
        resources = Resources.open(settings)
        started = time.perf_counter()
        sim = Simulator(SimulatorConfig.quiet(fleet_size=size, seed=7, rate_limits_enabled=False, locked_fraction=0.01))
        generated = time.perf_counter() - started
        for site in sim.truth.sites()[::5]:
            site.status = "opted_in"
        async with resources.session_factory() as session, session.begin():
            tenant = Tenant(slug="bench", name="Bench")
            session.add(tenant)
            await session.flush()
            tenant_id: TenantId = tenant_id_from(tenant.id)

        async def resolve(session: AsyncSession, tenant: TenantId) -> UpstreamTarget:
            return UpstreamTarget(
                token=SecretStr(sim.tokens["distributor"]),
                base_url="http://simulator.bench/v1",
                transport=httpx.ASGITransport(app=sim.app),
                timeout=120.0,
            )

        runner = SyncRunner(
            resources.engine, resources.session_factory, resolve, SyncOptions(page_size=1000, concurrency=8)
        )
        devices = len(sim.truth.visible_devices("distributor"))
        print(f"{size:,} inverters ({devices:,} visible to the token; fleet generated in {generated:.1f} s)")
        for label, kind in (("full sync (first)", SyncKind.FULL), ("full sync (no change)", SyncKind.FULL),
                            ("refresh (no change)", SyncKind.REFRESH)):  # fmt: skip
            started = time.perf_counter()
            outcome = await runner.run(tenant_id, kind)
            await _report(resources, label, outcome, time.perf_counter() - started)
            if outcome.error:
                print(f"    error: {outcome.error}")
            if label == "full sync (first)":
                async with resources.session_factory() as session:
                    equal = await mirrored(session, tenant_id) == expected(sim, "distributor")
                print(f"  {'':<28} equal to the simulator's ground truth: {'yes' if equal else 'NO'}")
        for device in sim.truth.devices()[::100]:
            sim.set_status(device.serial, "LOST" if device.status != "LOST" else "NORMAL")
        started = time.perf_counter()
        outcome = await runner.run(tenant_id, SyncKind.REFRESH)
        await _report(resources, "refresh (1 % status flips)", outcome, time.perf_counter() - started)
        if limited is not None:
            await _limited(resources, size, limited)
    finally:
        if resources is not None:
            await resources.aclose()
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="A PostgreSQL server URL (a scratch database is created on it).",
    )
    parser.add_argument("--redis-url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument(
        "--limited", type=int, default=10_000,
        help="Also run a rate-limited full sync for this size (0: skip), limit --limit per --window seconds.",
    )  # fmt: skip
    parser.add_argument("--limit", type=int, default=1500)
    parser.add_argument("--window", type=float, default=1.0)
    args = parser.parse_args()
    for size in args.sizes:
        limited = (args.limit, args.window) if size == args.limited else None
        asyncio.run(bench(size, args.database_url, args.redis_url, limited))


if __name__ == "__main__":
    main()
