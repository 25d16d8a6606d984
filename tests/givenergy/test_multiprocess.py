"""Four OS processes share one credential against the simulator served by uvicorn: no 429, budget well used."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from redis.asyncio import Redis

from service.simulator import Simulator, SimulatorConfig

ROOT = Path(__file__).resolve().parents[2]
LIMIT, WINDOW, DURATION, PROCESSES, CONCURRENCY = 60, 2.0, 6.0, 4, 8


@pytest.fixture
def served_simulator() -> Iterator[tuple[Simulator, str]]:
    """The simulator on a free loopback port, served by uvicorn in a thread; yields (sim, base URL)."""
    sim = Simulator(SimulatorConfig.quiet(fleet_size=5, rate_limit_per_window=LIMIT, rate_limit_window_seconds=WINDOW))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(sim.app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield sim, f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


async def _delete_namespace(redis_url: str, namespace: str) -> None:
    redis = Redis.from_url(redis_url)
    keys = [key async for key in redis.scan_iter(match=f"{namespace}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def test_four_processes_share_one_budget_without_a_429(
    served_simulator: tuple[Simulator, str], redis_url: str, redis_namespace: str
) -> None:
    sim, base_url = served_simulator
    config = {
        "redis_url": redis_url,
        "namespace": f"{redis_namespace}:mp:{uuid.uuid4().hex[:8]}",
        "credential": "shared-credential",
        "limit": LIMIT,
        "window": WINDOW,
        "duration": DURATION,
        "concurrency": CONCURRENCY,
        "token": sim.tokens["company"],
        "base_url": base_url,
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.givenergy.limiter_worker"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
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
        results = []
        for worker in workers:
            out, _ = worker.communicate(timeout=DURATION + 60)
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    asyncio.run(_delete_namespace(redis_url, str(config["namespace"])))
    ok = sum(int(r["ok"]) for r in results)
    throttled = sum(int(r["statuses"].get("429", 0)) for r in results)
    allowed = LIMIT * DURATION / WINDOW
    utilisation = ok / allowed
    print(  # noqa: T201
        f"\n{PROCESSES} processes x {CONCURRENCY} tasks, limit {LIMIT}/{WINDOW:.0f}s for {DURATION:.0f}s: "
        f"{ok} answered of {allowed:.0f} allowed ({utilisation:.1%}), 429s: {throttled}, per process: "
        f"{[r['ok'] for r in results]}"
    )
    assert throttled == 0
    assert sim.truth.counters()["company"].throttled == 0
    assert utilisation >= 0.9
    assert all(int(r["ok"]) > 0 for r in results), "every process got a share"
