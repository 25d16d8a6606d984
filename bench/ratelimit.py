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
import os
import statistics
import sys
import uuid
from pathlib import Path

# The worker processes and their driver are shared with the multi-process test.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.simulator import Simulator, SimulatorConfig
from tests.givenergy.limiter_worker import delete_namespace, run_processes, served

CONCURRENCY = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    duration = args.window * args.windows
    print(f"rate limiter bench: limit {args.limit} per {args.window:g} s, {duration:g} s per run")
    print(f"{'processes':>9} | {'answered':>8} | {'allowed':>7} | {'utilisation':>11} | {'429s':>4} | "
          f"{'bare µs':>8} | {'limited µs':>10} | {'overhead µs':>11} | {'acquire p50/p99 µs':>18}")
    for processes in args.processes:
        namespace = f"bench-ratelimit-{uuid.uuid4().hex[:8]}"
        sim = Simulator(
            SimulatorConfig.quiet(fleet_size=5, rate_limit_per_window=args.limit, rate_limit_window_seconds=args.window)
        )
        with served(sim) as base_url:
            results = run_processes("utilisation", processes, {
                "redis_url": args.redis_url, "namespace": namespace, "credential": "bench-credential",
                "limit": args.limit, "window": args.window, "duration": duration, "concurrency": CONCURRENCY,
                "token": sim.tokens["company"], "base_url": base_url,
            }, timeout=duration + 600)
        overhead = run_processes("overhead", processes, {
            "redis_url": args.redis_url, "namespace": namespace, "requests": args.requests,
        }, timeout=600)
        asyncio.run(delete_namespace(args.redis_url, namespace))
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
