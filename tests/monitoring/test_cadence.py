"""A tenant whose GivEnergy cloud cannot serve the monitor: one warning per attempt, one attempt per sweep interval.

The cycle runs as the worker runs it (the ``monitoring.cycle`` job, the tenant's stored credential, the one upstream
entry point), against a closed port, a simulator answering every request with a 5xx, and one refusing the token.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from structlog.testing import capture_logs

from service.core.clock import utcnow
from service.core.tenancy import TenantId
from service.givenergy import RetryPolicy
from service.jobs.context import JobContext
from service.jobs.typed import NoPayload
from service.monitoring.jobs import CyclePayload, run_cycle, schedule_cycles
from service.monitoring.repository import MonitoringRepository
from service.runtime import Resources
from service.upstream import Route
from tests.mirror.conftest import add_credential, quiet_simulator

ONE_TRY = RetryPolicy(max_attempts=1)
SIMULATOR = "http://simulator.test/v1"


def closed_port() -> tuple[Route, str, str]:
    """A local port nobody listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return Route(base_url=f"http://127.0.0.1:{port}/v1", retry=ONE_TRY), "any-token", "UpstreamUnavailableError"


def server_errors() -> tuple[Route, str, str]:
    """A simulator answering every request of a valid token with 500, 502 or 503."""
    sim = quiet_simulator(5, server_error_probability=1.0)
    route = Route(transport=httpx.ASGITransport(app=sim.app), base_url=SIMULATOR, retry=ONE_TRY)
    return route, sim.tokens["company"], "UpstreamUnavailableError"


def refused_token() -> tuple[Route, str, str]:
    """A simulator refusing an unknown token (401)."""
    sim = quiet_simulator(5)
    return Route(transport=httpx.ASGITransport(app=sim.app), base_url=SIMULATOR), "revoked-token", "UnauthorisedError"


@pytest.fixture(params=[closed_port, server_errors, refused_token],
                ids=["connection-refused", "server-error", "token-refused"])
def failing_cloud(request: pytest.FixtureRequest, resources: Resources) -> Iterator[tuple[str, str]]:
    """The tenant's upstream routed to a cloud that fails; yields (token to store, the error kind expected)."""
    route, token, expected = request.param()
    with resources.upstream.routed(route):
        yield token, expected


async def test_a_failing_cloud_costs_one_warned_attempt_per_sweep_interval(
    resources: Resources, tenant_id: TenantId, failing_cloud: tuple[str, str]
) -> None:
    token, expected = failing_cloud
    await add_credential(resources, tenant_id, token, SIMULATOR)
    ctx = JobContext(resources=resources)
    before = utcnow()

    with capture_logs() as logs:
        result = await run_cycle.run(ctx, CyclePayload(tenant_id=uuid.UUID(str(tenant_id))))
        asked_again = await schedule_cycles.run(ctx, NoPayload())  # the sweeper's next pass, right away

    assert result["failure"] == expected
    async with resources.session_factory() as session:
        settings = await MonitoringRepository(session, tenant_id).settings()
    assert settings.last_sweep_at is None  # not recorded as run
    assert settings.next_sweep_at is not None
    assert settings.next_sweep_at >= before + timedelta(seconds=settings.sweep_interval_seconds)
    assert asked_again == 0
    failures = [entry for entry in logs if entry["log_level"] in ("warning", "error", "critical")]
    assert [(entry["event"], entry["log_level"], entry["tenant_id"], entry["error"]) for entry in failures] == [
        ("monitoring.cycle.failed", "warning", str(tenant_id), expected)]
    assert "exc_info" not in failures[0]
    assert failures[0]["next_attempt_at"] == settings.next_sweep_at.isoformat()
