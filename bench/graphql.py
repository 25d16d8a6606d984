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

``--against-postgraphile`` measures givfleet side by side with PostGraphile 4.14 (installed with npm into
``~/.cache/givfleet-bench/postgraphile`` on first use; see ``bench/postgraphile.py`` for how it is scoped to the
seeded tenant: its own role, ``SELECT`` on the mirror tables only, row-level security on ``tenant_id``). Both
servers run at once, one process each (uvicorn with one worker; one Node process), over the same database.
Each query is asked of both with the same variables, and their answers are compared (shape differences
normalised: ``edges { node }`` against ``nodes``, a relation's ``{ nodes }`` against a list, time formats;
cursors are not compared) before anything is timed. Then it runs in alternating blocks (givfleet, PostGraphile,
PostGraphile, givfleet, ...) of ``--block`` requests until each server has answered ``--requests``:

- ``page c=8`` / ``page c=1``: the first 100 present inverters by serial, with site, account and its parent,
  and batteries (present, by position), and ``totalCount``;
- ``by serial scalars``: one inverter (a random serial each time), scalar fields only;
- ``by serial relations``: the same with its site, account and batteries;
- ``count of status``: ``totalCount`` of the present inverters in ERROR.

Each line gives both servers' p50, p95 and requests/s and the ratios; the last line reads
``graphql-vs-postgraphile page_p50_ratio=X page_rps_ratio=Y by_serial_p50_ratio=Z``: p50 ratios are
givfleet/PostGraphile, the req/s ratio PostGraphile/givfleet (``page`` is the page at concurrency 8,
``by_serial`` the larger of the two by-serial ratios).
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
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import datetime  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench import postgraphile  # noqa: E402
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

INVERTER_SCALARS = """query($serial: String!) { inverter(serial: $serial) {
  serial status model firmwareArm firmwareDsp lastOnline } }"""
STATUS_COUNT = """{ inverters(first: 0, filter: {statusIn: ["ERROR"]}) { totalCount } }"""

# PostGraphile's equivalents (default inflection; aliases give givfleet's names, see ``canonical``).
PG_INVERTER = """query($tenant: UUID!, $serial: String!) {
  inverter: mirrorInverterByTenantIdAndSerial(tenantId: $tenant, serial: $serial) {
  serial status model firmwareArm firmwareDsp lastOnline
  site: mirrorSiteByTenantIdAndSiteUpstreamId { name } account: mirrorAccountByTenantIdAndAccountUpstreamId { username }
  batteries: mirrorBatteryModulesByTenantIdAndInverterSerial(orderBy: POSITION_ASC, condition: {removedAt: null}) {
  nodes { serial capacityFull } } } }"""
PG_INVERTER_SCALARS = """query($tenant: UUID!, $serial: String!) {
  inverter: mirrorInverterByTenantIdAndSerial(tenantId: $tenant, serial: $serial) {
  serial status model firmwareArm firmwareDsp lastOnline } }"""
PG_PAGE_OF_100 = """{ inverters: allMirrorInverters(first: 100, orderBy: SERIAL_ASC, condition: {removedAt: null}) {
  totalCount pageInfo { endCursor } nodes {
  serial status model firmwareArm lastOnline
  site: mirrorSiteByTenantIdAndSiteUpstreamId { name siteStatus: schemeStatus }
  account: mirrorAccountByTenantIdAndAccountUpstreamId { username postcode
    parent: mirrorAccountByTenantIdAndParentUpstreamId { username } }
  batteries: mirrorBatteryModulesByTenantIdAndInverterSerial(orderBy: POSITION_ASC, condition: {removedAt: null}) {
  nodes { serial capacityFull } } } } }"""
PG_STATUS_COUNT = """{ inverters: allMirrorInverters(condition: {status: "ERROR", removedAt: null}) { totalCount } }"""

Request = tuple[str, dict[str, Any]]


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


@dataclass
class Timings:
    """What one server's blocks of one scenario measured."""

    latencies: list[float]
    elapsed: float = 0.0

    @property
    def p50(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[49] * 1000

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[94] * 1000

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed


@dataclass
class Comparison:
    """One query asked of both servers: the same variables (``pick``) become each server's request."""

    name: str
    concurrency: int
    givfleet: Callable[[Any], Request]
    postgraphile: Callable[[Any], Request]
    pick: Callable[[], Any]

    def ours(self) -> Request:
        return self.givfleet(self.pick())

    def theirs(self) -> Request:
        return self.postgraphile(self.pick())


_MOMENT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def canonical(value: Any) -> Any:
    """An answer with the two schemas' shape differences taken out: ``edges { node }`` and ``{ nodes }`` become
    lists, cursors go, and times become ``datetime`` (the servers format them differently)."""
    if isinstance(value, dict):
        if "edges" in value:
            value = {**{k: v for k, v in value.items() if k != "edges"}, "nodes": [e["node"] for e in value["edges"]]}
        if list(value) == ["nodes"]:
            return canonical(value["nodes"])
        return {key: canonical(item) for key, item in value.items() if key != "pageInfo"}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    if isinstance(value, str) and _MOMENT.match(value):
        return datetime.fromisoformat(value)
    return value


async def ask(client: httpx.AsyncClient, request: Request) -> dict[str, Any]:
    """The ``data`` of one answer; anything but a clean 200 stops the bench."""
    query, variables = request
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"{client.base_url}: {response.status_code} {body.get('errors')}")
    data: dict[str, Any] = body["data"]
    return data


async def block(client: httpx.AsyncClient, make: Callable[[], Request], requests: int, concurrency: int,
                timings: Timings) -> None:
    """``requests`` requests from ``concurrency`` tasks; latencies and wall time added to ``timings``."""
    remaining = iter(range(requests))

    async def worker() -> None:
        for _ in remaining:
            request = make()
            started = time.perf_counter()
            await ask(client, request)
            timings.latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    timings.elapsed += time.perf_counter() - started


async def check_same(givfleet: httpx.AsyncClient, peer: httpx.AsyncClient, comparisons: list[Comparison]) -> None:
    """Stop unless both servers give the same data (20 picks of each comparison's variables)."""
    for comparison in comparisons:
        for _ in range(20):
            picked = comparison.pick()
            ours, theirs = await asyncio.gather(ask(givfleet, comparison.givfleet(picked)),
                                                ask(peer, comparison.postgraphile(picked)))
            if canonical(ours) != canonical(theirs):
                raise RuntimeError(f"{comparison.name}: the answers differ for {picked!r}:\n{ours}\n{theirs}")


async def compare(givfleet: httpx.AsyncClient, peer: httpx.AsyncClient, comparisons: list[Comparison],
                  requests: int, block_size: int) -> dict[str, tuple[Timings, Timings]]:
    """Time each comparison on both servers in alternating blocks."""
    results: dict[str, tuple[Timings, Timings]] = {}
    print(f"{'query':<22} {'c':>2} | {'givfleet p50':>12} {'p95':>7} {'req/s':>7} | {'PostGraphile p50':>16} "
          f"{'p95':>7} {'req/s':>7} | {'p50 ratio':>9} {'req/s ratio':>11}")
    for comparison in comparisons:
        ours, theirs = Timings([]), Timings([])
        sides = [(givfleet, comparison.ours, ours), (peer, comparison.theirs, theirs)]
        for client, make, _ in sides:  # warm-up: connections, statement and plan caches
            await block(client, make, 20, comparison.concurrency, Timings([]))
        for round_number in range(-(-requests // block_size)):
            size = min(block_size, requests - round_number * block_size)
            for client, make, timings in sides[::1 if round_number % 2 == 0 else -1]:
                await block(client, make, size, comparison.concurrency, timings)
        print(f"{comparison.name:<22} {comparison.concurrency:>2} | {ours.p50:>9.1f} ms {ours.p95:>7.1f} "
              f"{ours.rate:>7.1f} | {theirs.p50:>13.1f} ms {theirs.p95:>7.1f} {theirs.rate:>7.1f} | "
              f"{ours.p50 / theirs.p50:>8.2f}x {theirs.rate / ours.rate:>10.2f}x", flush=True)
        results[comparison.name] = (ours, theirs)
    return results


async def against_postgraphile(resources: Any, tenant_id: uuid.UUID, key: str, args: argparse.Namespace) -> None:
    """The ``--against-postgraphile`` run over the seeded database."""
    rng = random.Random(1)
    tenant = str(tenant_id)

    def serial() -> str:
        return inverter_serial(rng.randrange(args.inverters))

    def fixed(request: Request) -> Callable[[Any], Request]:
        return lambda _: request

    comparisons = [
        Comparison("page c=8", args.concurrency, fixed((PAGE_OF_100, {})), fixed((PG_PAGE_OF_100, {})), lambda: None),
        Comparison("page c=1", 1, fixed((PAGE_OF_100, {})), fixed((PG_PAGE_OF_100, {})), lambda: None),
        Comparison("by serial scalars", args.concurrency, lambda s: (INVERTER_SCALARS, {"serial": s}),
                   lambda s: (PG_INVERTER_SCALARS, {"tenant": tenant, "serial": s}), serial),
        Comparison("by serial relations", args.concurrency, lambda s: (ONE_INVERTER, {"serial": s}),
                   lambda s: (PG_INVERTER, {"tenant": tenant, "serial": s}), serial),
        Comparison("count of status", args.concurrency, fixed((STATUS_COUNT, {})), fixed((PG_STATUS_COUNT, {})),
                   lambda: None),
    ]
    async with postgraphile.tenant_role(resources.engine, tenant_id) as peer_url:
        started: list[subprocess.Popen[bytes]] = []
        try:  # both servers stop whatever fails, PostGraphile's start-up included
            api, api_url = serve_api(resources.settings)
            started.append(api)
            peer, peer_url_http = postgraphile.serve(peer_url)
            started.append(peer)
            limits = httpx.Limits(max_connections=args.concurrency * 2)
            async with httpx.AsyncClient(base_url=api_url, headers={"Authorization": f"Bearer {key}"}, timeout=60,
                                         limits=limits) as ours, \
                    httpx.AsyncClient(base_url=peer_url_http, timeout=60, limits=limits) as theirs:
                page = canonical(await ask(ours, (PAGE_OF_100, {})))
                if len(page["inverters"]["nodes"]) != 100 or not (await ask(ours, (STATUS_COUNT, {})))[
                        "inverters"]["totalCount"]:
                    raise RuntimeError("the seeded fleet is too small to compare pages and counts")
                await check_same(ours, theirs, comparisons)
                print(f"(concurrency {args.concurrency}, {args.inverters} inverters, {args.requests} requests per "
                      f"server and query, blocks of {args.block}; answers compared: identical)")
                results = await compare(ours, theirs, comparisons, args.requests, args.block)
        finally:
            for process in started:
                process.terminate()
                process.wait(timeout=30)
    page_ours, page_theirs = results["page c=8"]
    by_serial = max(ours.p50 / theirs.p50 for ours, theirs in
                    (results["by serial scalars"], results["by serial relations"]))
    print(f"graphql-vs-postgraphile page_p50_ratio={page_ours.p50 / page_theirs.p50:.2f} "
          f"page_rps_ratio={page_theirs.rate / page_ours.rate:.2f} by_serial_p50_ratio={by_serial:.2f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--inverters", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--against-postgraphile", action="store_true",
                        help="measure side by side with PostGraphile 4.14 (see above)")
    parser.add_argument("--block", type=int, default=50, help="requests per alternating block")
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
        if args.against_postgraphile:
            await against_postgraphile(resources, seeded.tenant_id, key, args)
            return
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
