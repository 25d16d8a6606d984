"""Fixtures of the simulator tests: a calm simulator per test and clients bound to its tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest

from service.simulator import Simulator, SimulatorConfig

# The upstream documentation, vendored in the repository (docs/upstream).
UPSTREAM = Path(__file__).resolve().parents[2] / "docs" / "upstream"

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def sim() -> Simulator:
    """A small, frozen, calm simulator (no spontaneous behaviour, no awkward inverters)."""
    return Simulator(SimulatorConfig.quiet(fleet_size=20, seed=1))


def client_factory(simulator: Simulator) -> ClientFactory:
    """Build clients of a simulator: ``async with factory("company") as client``."""

    @asynccontextmanager
    async def make(token: str | None = "company", base: str = "http://sim/v1") -> AsyncIterator[httpx.AsyncClient]:  # noqa: S107
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {simulator.tokens.get(token, token)}"
        transport = httpx.ASGITransport(app=simulator.app)
        async with httpx.AsyncClient(transport=transport, base_url=base, headers=headers) as client:
            yield client

    return make


@pytest.fixture
def client(sim: Simulator) -> ClientFactory:
    """Client factory of the ``sim`` fixture."""
    return client_factory(sim)
