"""OS processes sharing one credential's rate limiter, and what drives them.

The multi-process test (``tests/givenergy/test_multiprocess.py``) and ``bench/ratelimit.py`` both use it.

A worker runs as ``python -m tests.givenergy.limiter_worker KIND``: it reads its configuration as one JSON line on
stdin, prints ``ready``, waits for the start time (a second line), works, and prints one JSON line of results.

- ``utilisation``: ``GET /account`` from ``concurrency`` tasks through the shared limiter until the end of the
  run; answers ``{"ok": n, "statuses": {...}}``, where only answers completed before the end count as ``ok``.
- ``overhead``: sequential calls to an instantly answering transport, without and then with a limiter whose
  budget never runs out; answers microseconds per request for each, and the limiter's own acquire times.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from redis.asyncio import Redis

from service.givenergy import GivEnergyClient, GivEnergyError, Lane, RateLimiter, RetryPolicy
from service.simulator import Simulator

ROOT = Path(__file__).resolve().parents[2]
WORKER_MODULE = "tests.givenergy.limiter_worker"


async def utilisation(config: dict[str, Any], start_at: float) -> dict[str, Any]:
    """Call ``GET /account`` as fast as the shared limiter allows from ``start_at`` for ``duration`` seconds."""
    redis = Redis.from_url(config["redis_url"])
    budget = RateLimiter(redis, namespace=config["namespace"]).credential(
        config["credential"], requests_per_minute=int(config["limit"]), window_seconds=float(config["window"])
    )
    client = GivEnergyClient(config["token"], base_url=config["base_url"], limiter=budget, lane=Lane.SYNC,
                             retry=RetryPolicy(max_attempts=1))
    end = start_at + float(config["duration"])
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
                statuses["200"] += 1
                ok += time.time() <= end

    await asyncio.sleep(max(0.0, start_at - time.time()))
    tasks = [asyncio.create_task(loop()) for _ in range(int(config["concurrency"]))]
    await asyncio.sleep(max(0.0, end - time.time()))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await client.aclose()
    await redis.aclose()
    return {"ok": ok, "statuses": dict(statuses)}


async def overhead(config: dict[str, Any], start_at: float) -> dict[str, Any]:
    """Time ``requests`` sequential calls without and with a limiter (an instant transport isolates its cost)."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": {"id": 1, "name": "bench"}},
                              headers={"X-RateLimit-Limit": "1000000000", "X-RateLimit-Remaining": "999999999"})

    redis = Redis.from_url(config["redis_url"])
    budget = RateLimiter(redis, namespace=config["namespace"]).credential(
        "overhead", requests_per_minute=1_000_000_000, window_seconds=1.0
    )
    requests = int(config["requests"])

    async def per_request(client: GivEnergyClient) -> float:
        for _ in range(50):  # warm-up
            await client.get_account()
        started = time.perf_counter()
        for _ in range(requests):
            await client.get_account()
        return (time.perf_counter() - started) / requests

    await asyncio.sleep(max(0.0, start_at - time.time()))
    async with GivEnergyClient("t", base_url="http://bench/v1", transport=httpx.MockTransport(answer)) as bare:
        without = await per_request(bare)
    async with GivEnergyClient("t", base_url="http://bench/v1", transport=httpx.MockTransport(answer),
                               limiter=budget) as limited:
        with_limiter = await per_request(limited)
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


KINDS = {"utilisation": utilisation, "overhead": overhead}


def run_processes(kind: str, processes: int, config: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
    """Start ``processes`` workers of ``kind``, release them at one moment, and return each one's results."""
    workers = [
        subprocess.Popen(  # noqa: S603 - this interpreter and this module
            [sys.executable, "-m", WORKER_MODULE, kind], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(json.dumps(config) + "\n")
            worker.stdin.flush()
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        start_at = time.time() + 0.5
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(f"{start_at}\n")
            worker.stdin.flush()
        return [json.loads(worker.communicate(timeout=timeout)[0].strip().splitlines()[-1]) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()


@contextmanager
def served(sim: Simulator) -> Iterator[str]:
    """Serve ``sim`` with uvicorn on a free loopback port in a thread; yields its v1 base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(sim.app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        if not server.started:
            raise RuntimeError("uvicorn did not start")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


async def delete_namespace(redis_url: str, namespace: str) -> None:
    """Delete every Redis key under ``namespace``."""
    redis = Redis.from_url(redis_url)
    keys = [key async for key in redis.scan_iter(match=f"{namespace}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def main() -> None:
    """Worker entry point (see the module docstring)."""
    work = KINDS[sys.argv[1]]
    config = json.loads(sys.stdin.readline())
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    start_at = float(sys.stdin.readline())
    sys.stdout.write(json.dumps(asyncio.run(work(config, start_at))) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
