"""A worker OS process of the multi-process limiter test (``python -m tests.givenergy.limiter_worker``).

Reads its configuration as one JSON line on stdin, prints ``ready``, waits for the start time (a second
line), calls ``GET /account`` from ``concurrency`` tasks through the shared limiter until the end of the
run, and prints one JSON line of counts: ``{"ok": n, "statuses": {...}}``. Only answers completed before
the end are counted as ``ok``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter

from redis.asyncio import Redis

from service.givenergy import GivEnergyClient, GivEnergyError, Lane, RateLimiter, RetryPolicy


async def run(config: dict[str, object], start_at: float) -> dict[str, object]:
    redis = Redis.from_url(str(config["redis_url"]))
    limiter = RateLimiter(redis, namespace=str(config["namespace"]))
    budget = limiter.credential(
        str(config["credential"]),
        requests_per_minute=int(str(config["limit"])),
        window_seconds=float(str(config["window"])),
    )
    client = GivEnergyClient(
        str(config["token"]),
        base_url=str(config["base_url"]),
        limiter=budget,
        lane=Lane.SYNC,
        retry=RetryPolicy(max_attempts=1),
    )
    end = start_at + float(str(config["duration"]))
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
                if time.time() <= end:
                    ok += 1

    await asyncio.sleep(max(0.0, start_at - time.time()))
    tasks = [asyncio.create_task(loop()) for _ in range(int(str(config["concurrency"])))]
    await asyncio.sleep(max(0.0, end - time.time()))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await client.aclose()
    await redis.aclose()
    return {"ok": ok, "statuses": dict(statuses)}


def main() -> None:
    config = json.loads(sys.stdin.readline())
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    start_at = float(sys.stdin.readline())
    result = asyncio.run(run(config, start_at))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
