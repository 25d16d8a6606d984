"""Four OS processes share one credential against the simulator served by uvicorn: no 429, never over the budget,
every process served. How much of the budget they use is a figure, printed by ``bench/ratelimit.py``: under a
loaded machine the processes cannot ask fast enough, so a test cannot assert it without timing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from service.simulator import Simulator, SimulatorConfig
from tests.givenergy.limiter_worker import delete_namespace, run_processes, served

LIMIT, WINDOW, DURATION, PROCESSES, CONCURRENCY = 60, 2.0, 6.0, 4, 8


@pytest.fixture
def served_simulator() -> Iterator[tuple[Simulator, str]]:
    """The simulator on a free loopback port, served by uvicorn in a thread; yields (sim, base URL)."""
    sim = Simulator(SimulatorConfig.quiet(fleet_size=5, rate_limit_per_window=LIMIT, rate_limit_window_seconds=WINDOW))
    with served(sim) as base_url:
        yield sim, base_url


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
    results = run_processes("utilisation", PROCESSES, config, timeout=DURATION + 60)
    asyncio.run(delete_namespace(redis_url, str(config["namespace"])))
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
    assert ok <= allowed + LIMIT, "never more than the budget (plus the window in flight at the end)"
    assert all(int(r["ok"]) > 0 for r in results), "every process got a share"
