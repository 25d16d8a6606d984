"""Benchmark of /graphql over a 10,000-inverter mirror: p50/p95 latency and requests/s.

Usage::

    .venv/bin/python bench/graphql.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
        [--redis-url redis://127.0.0.1:6379/0] [--inverters 10000] [--requests 300] [--concurrency 8]

A fresh database is created on the server, migrated, seeded in bulk (the test seed: per inverter a customer
account, site, dongle, two battery modules, one meter, one history row) and dropped at the end. The app runs
under uvicorn (one worker process, as ``givfleet api`` serves it) on loopback; requests come from
``--concurrency`` tasks of this process with a viewer API key, through the full stack (authentication,
strawberry, dataloaders, PostgreSQL). Scenarios:

- ``inverter by serial``: one inverter (a random serial each time) with its site, account and batteries;
- ``page of 100``: the first page of 100 inverters with site, account (and its parent) and batteries;
- ``fleetSummary``: counts by status, model, firmware, battery type and offline, over the whole fleet.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, where this very module would shadow graphql-core.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.support import bench_database, free_port, serve  # noqa: E402
from service.core.principal import Principal  # noqa: E402
from service.core.roles import Role  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.tenants.service import ApiKeyService  # noqa: E402
from tests.gql.seed import inverter_serial, seed_mirror  # noqa: E402

ONE_INVERTER = """query($serial: String!) { inverter(serial: $serial) {
  serial status model firmwareArm firmwareDsp lastOnline
  site { name } account { username } batteries { serial capacityFull } } }"""
PAGE_OF_100 = """{ inverters(first: 100) { totalCount pageInfo { endCursor } edges { node {
  serial status model firmwareArm lastOnline
  site { name siteStatus } account { username postcode parent { username } }
  batteries { serial capacityFull } } } } }"""
SUMMARY = """{ fleetSummary { total byStatus { value count } byModel { value count } byFirmwareArm { value count }
  byFirmwareDsp { value count } byBatteryType { value count } offline { hours count } } }"""


def serve_api(settings: Settings) -> tuple[subprocess.Popen[bytes], str]:
    """``givfleet``'s app under uvicorn in a process of its own (one worker), configured by environment."""
    port = free_port()
    process = serve(settings, [sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory", "--host",
                               "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"], port)
    return process, f"http://127.0.0.1:{port}"


async def scenario(client: httpx.AsyncClient, name: str, make: Any, requests: int, concurrency: int) -> None:
    latencies: list[float] = []
    remaining = iter(range(requests))

    async def worker() -> None:
        for _ in remaining:
            query, variables = make()
            started = time.perf_counter()
            response = await client.post("/graphql", json={"query": query, "variables": variables})
            latencies.append(time.perf_counter() - started)
            body = response.json()
            if response.status_code != 200 or body.get("errors"):
                raise RuntimeError(f"{name}: {response.status_code} {body.get('errors')}")

    for _ in range(min(10, requests)):  # warm-up: connections, statement caches
        query, variables = make()
        await client.post("/graphql", json={"query": query, "variables": variables})
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    print(f"{name:<22} {len(latencies):>6} {cuts[49] * 1000:>9.1f} {cuts[94] * 1000:>9.1f} "
          f"{len(latencies) / elapsed:>9.1f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--inverters", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    async with bench_database(args.database_url, args.redis_url, "bench") as resources:
        started = time.perf_counter()
        async with resources.engine.begin() as connection:
            seeded = await seed_mirror(connection, args.inverters, subcontractors=10)
        async with resources.engine.connect() as connection:  # as autovacuum would, before anyone reads
            await connection.execute(text("ANALYZE"))
            await connection.commit()
        print(f"seeded {args.inverters} inverters in {time.perf_counter() - started:.1f} s")
        async with resources.session_factory() as session, session.begin():
            key = (await ApiKeyService(session, Principal.cli(seeded.tenant_id)).create(
                name="bench", role=Role.VIEWER)).text
        server, base_url = serve_api(resources.settings)
        try:
            rng = random.Random(1)
            limits = httpx.Limits(max_connections=args.concurrency * 2)
            async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"},
                                         timeout=60, limits=limits) as client:
                print(f"{'scenario':<22} {'n':>6} {'p50 ms':>9} {'p95 ms':>9} {'req/s':>9}"
                      f"   (concurrency {args.concurrency}, {args.inverters} inverters)")
                await scenario(client, "inverter by serial",
                               lambda: (ONE_INVERTER, {"serial": inverter_serial(rng.randrange(args.inverters))}),
                               args.requests, args.concurrency)
                await scenario(client, "page of 100", lambda: (PAGE_OF_100, {}), args.requests, args.concurrency)
                await scenario(client, "fleetSummary", lambda: (SUMMARY, {}), args.requests, args.concurrency)
        finally:
            server.terminate()
            server.wait(timeout=30)

if __name__ == "__main__":
    asyncio.run(main())
