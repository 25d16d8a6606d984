"""Benchmark of the shared rate limiter: budget utilisation and overhead per request, 1 and 4 processes.

Usage::

    .venv/bin/python bench/ratelimit.py [--redis-url redis://127.0.0.1:6379/0] [--processes 1 4]

Utilisation: the simulator is served by uvicorn on loopback with a scaled-down limit (default 60 requests per
2 s); N worker processes share one credential through the Redis limiter and call ``GET /account`` from 8
tasks each for 3 windows. Utilisation = answers received / what the server's windows allowed; 429s are
counted separately (there should be none).

Overhead: each of N processes makes sequential calls through a client whose transport answers instantly
(``httpx.MockTransport``), once without a limiter and once with a limiter whose budget is never exhausted;
the difference per request is the limiter's overhead (one Lua round trip to Redis, plus a second one only
when the answer's rate-limit headers surprise it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import uvicorn
from redis.asyncio import Redis

from service.givenergy import GivEnergyClient, GivEnergyError, Lane, RateLimiter, RetryPolicy
from service.simulator import Simulator, SimulatorConfig

CONCURRENCY = 8


# --- worker side ------------------------------------------------------------------------------------------


async def utilisation_worker(cfg: dict[str, Any], start_at: float) -> dict[str, Any]:
    redis = Redis.from_url(cfg["redis_url"])
    budget = RateLimiter(redis, namespace=cfg["namespace"]).credential(
        "bench-credential", requests_per_minute=cfg["limit"], window_seconds=cfg["window"]
    )
    client = GivEnergyClient(
        cfg["token"], base_url=cfg["base_url"], limiter=budget, lane=Lane.SYNC, retry=RetryPolicy(max_attempts=1)
    )
    end = start_at + cfg["duration"]
    statuses: Counter[str] = Counter()
    ok = 0

    async def loop() -> None:
        nonlocal ok
        while True:
            try:
                await client.get_account()
            except GivEnergyError as error:
                statuses[str(error.status_code)] += 1
            else:
                ok += time.time() <= end

    await asyncio.sleep(max(0.0, start_at - time.time()))
    tasks = [asyncio.create_task(loop()) for _ in range(CONCURRENCY)]
    await asyncio.sleep(max(0.0, end - time.time()))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await client.aclose()
    await redis.aclose()
    return {"ok": ok, "statuses": dict(statuses)}


async def overhead_worker(cfg: dict[str, Any], start_at: float) -> dict[str, Any]:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"data": {"id": 1, "name": "bench"}},
            headers={"X-RateLimit-Limit": "1000000000", "X-RateLimit-Remaining": "999999999"},
        )

    redis = Redis.from_url(cfg["redis_url"])
    budget = RateLimiter(redis, namespace=cfg["namespace"]).credential(
        "bench-overhead", requests_per_minute=1_000_000_000, window_seconds=1.0
    )
    requests = cfg["requests"]

    async def timed(client: GivEnergyClient) -> float:
        for _ in range(50):  # warm-up
            await client.get_account()
        started = time.perf_counter()
        for _ in range(requests):
            await client.get_account()
        return (time.perf_counter() - started) / requests

    await asyncio.sleep(max(0.0, start_at - time.time()))
    async with GivEnergyClient("t", base_url="http://bench/v1", transport=httpx.MockTransport(answer)) as bare:
        without = await timed(bare)
    async with GivEnergyClient(
        "t", base_url="http://bench/v1", transport=httpx.MockTransport(answer), limiter=budget
    ) as limited:
        with_limiter = await timed(limited)
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        await budget.acquire(lane=Lane.SYNC)
        samples.append(time.perf_counter() - started)
    await redis.aclose()
    return {
        "without_us": without * 1e6,
        "with_us": with_limiter * 1e6,
        "acquire_median_us": statistics.median(samples) * 1e6,
        "acquire_p99_us": sorted(samples)[int(len(samples) * 0.99) - 1] * 1e6,
    }


def worker_main(kind: str) -> None:
    cfg = json.loads(sys.stdin.readline())
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    work = utilisation_worker if kind == "utilisation" else overhead_worker
    print(json.dumps(asyncio.run(work(cfg, start_at))), flush=True)


# --- driver side ------------------------------------------------------------------------------------------


def spawn(kind: str, processes: int, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    workers = [
        subprocess.Popen(  # noqa: S603 - this interpreter and this file
            [sys.executable, __file__, "--worker", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(json.dumps(cfg) + "\n")
        worker.stdin.flush()
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
    start_at = time.time() + 0.5
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(f"{start_at}\n")
        worker.stdin.flush()
    return [json.loads(w.communicate(timeout=600)[0].strip().splitlines()[-1]) for w in workers]


class Served:
    """The simulator on a free loopback port under uvicorn, in a background thread."""

    def __init__(self, sim: Simulator) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(sim.app, log_level="warning", access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])), daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}/v1"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


async def cleanup(redis_url: str, namespace: str) -> None:
    redis = Redis.from_url(redis_url)
    keys = [key async for key in redis.scan_iter(match=f"{namespace}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["utilisation", "overhead"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("TEST_REDIS_URL") or os.environ.get("GIVFLEET_REDIS_URL") or "redis://127.0.0.1:6379/0",
    )
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--windows", type=int, default=3, help="run length in windows")
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests per process (overhead)")
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker)
        return
    duration = args.window * args.windows
    print(f"rate limiter bench: limit {args.limit} per {args.window:g} s, {duration:g} s per run")
    print(f"{'processes':>9} | {'answered':>8} | {'allowed':>7} | {'utilisation':>11} | {'429s':>4} | "
          f"{'bare µs':>8} | {'limited µs':>10} | {'overhead µs':>11} | {'acquire p50/p99 µs':>18}")
    for processes in args.processes:
        namespace = f"bench-ratelimit-{uuid.uuid4().hex[:8]}"
        sim = Simulator(
            SimulatorConfig.quiet(fleet_size=5, rate_limit_per_window=args.limit, rate_limit_window_seconds=args.window)
        )
        with Served(sim) as base_url:
            results = spawn(
                "utilisation",
                processes,
                {
                    "redis_url": args.redis_url,
                    "namespace": namespace,
                    "limit": args.limit,
                    "window": args.window,
                    "duration": duration,
                    "token": sim.tokens["company"],
                    "base_url": base_url,
                },
            )
        overhead = spawn("overhead", processes, {"redis_url": args.redis_url, "namespace": namespace,
                                                  "requests": args.requests})  # fmt: skip
        asyncio.run(cleanup(args.redis_url, namespace))
        ok = sum(r["ok"] for r in results)
        throttled = sum(r["statuses"].get("429", 0) for r in results)
        allowed = args.limit * duration / args.window
        bare = statistics.mean(r["without_us"] for r in overhead)
        limited = statistics.mean(r["with_us"] for r in overhead)
        p50 = statistics.mean(r["acquire_median_us"] for r in overhead)
        p99 = max(r["acquire_p99_us"] for r in overhead)
        print(f"{processes:>9} | {ok:>8} | {allowed:>7.0f} | {ok / allowed:>10.1%} | {throttled:>4} | "
              f"{bare:>8.0f} | {limited:>10.0f} | {limited - bare:>11.0f} | {p50:>8.0f} / {p99:<7.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
