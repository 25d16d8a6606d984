"""Simulator figures: fleet generation time and memory (10,000 and 50,000 inverters), list-page throughput.

Run: ``.venv/bin/python bench/simulator.py`` (add ``--uvicorn`` to also measure over real HTTP).
Each fleet size is generated in a fresh subprocess so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.simulator import Simulator, SimulatorConfig  # noqa: E402


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate_once(size: int) -> dict[str, float]:
    """Generate one fleet (default behaviour: 7 days of history) and report time and memory."""
    gc.collect()
    baseline = _rss_mb()
    started = time.perf_counter()
    sim = Simulator(SimulatorConfig(fleet_size=size, seed=7))
    elapsed = time.perf_counter() - started
    peak = _rss_mb()
    devices = len(sim.truth.devices())
    return {"size": size, "devices": devices, "seconds": elapsed, "peak_rss_mb": peak,
            "rss_growth_mb": peak - baseline}  # fmt: skip


async def page_throughput(sim: Simulator, page_size: int, requests: int, transport: httpx.AsyncBaseTransport | None,
                          base_url: str, concurrency: int = 1) -> float:  # fmt: skip
    """Requests per second of GET /communication-device pages (different pages, company token)."""
    headers = {"Authorization": f"Bearer {sim.tokens['company']}"}
    total = len(sim.truth.visible_serials("company"))
    pages = max(1, total // page_size)
    async with httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers, timeout=60) as client:

        async def worker(offset: int) -> None:
            for number in range(offset, requests, concurrency):
                response = await client.get("/communication-device", params={"page": number % pages + 1,
                                                                             "pageSize": page_size})  # fmt: skip
                if response.status_code != 200:
                    raise RuntimeError(response.text)

        await client.get("/communication-device")  # warm-up: connection and code paths
        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return requests / (time.perf_counter() - started)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 50_000])
    parser.add_argument("--uvicorn", action="store_true", help="also measure throughput over uvicorn")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(generate_once(args.one)))
        return

    print("== generation (fresh process each; includes 7 simulated days of history) ==")
    for size in args.sizes:
        output = subprocess.run(  # noqa: S603 - our own interpreter and script
            [sys.executable, __file__, "--one", str(size)], check=True, capture_output=True, text=True
        ).stdout
        figures = json.loads(output)
        print(f"{size:>7} inverters: {figures['seconds']:.2f} s, peak RSS {figures['peak_rss_mb']:.0f} MB "
              f"(+{figures['rss_growth_mb']:.0f} MB for the fleet)")  # fmt: skip

    sim = Simulator(SimulatorConfig(fleet_size=10_000, seed=7, rate_limits_enabled=False))
    print("== list-page throughput, 10,000-inverter fleet, company token, GET /communication-device ==")
    transport = httpx.ASGITransport(app=sim.app)
    for page_size, requests in ((15, 2000), (100, 400), (1000, 40)):
        rate = asyncio.run(page_throughput(sim, page_size, requests, transport, "http://sim/v1"))
        print(f"  in-process  pageSize={page_size:>4}: {rate:7.0f} requests/s ({rate * page_size:8.0f} devices/s)")

    if args.uvicorn:
        import uvicorn

        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(sim.app, host="127.0.0.1", port=port, log_level="error"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        for page_size, requests in ((15, 1000), (100, 300)):
            rate = asyncio.run(page_throughput(sim, page_size, requests, None, f"http://127.0.0.1:{port}/v1", 8))
            print(f"  uvicorn     pageSize={page_size:>4}: {rate:7.0f} requests/s (8 concurrent, same process)")
        server.should_exit = True
        thread.join()


if __name__ == "__main__":
    main()
