"""Syncs against the simulator: the mirror equals the ground truth, within the plan, and keeps up with changes."""

from __future__ import annotations

from service.core.tenancy import TenantId
from service.db.models import SyncKind, SyncState
from service.runtime import Resources
from tests.mirror.conftest import RunnerFactory, quiet_simulator
from tests.mirror.truth import expected, mirrored


async def test_full_sync_mirrors_the_fleet_within_the_plan(
    resources: Resources, tenant_id: TenantId, make_runner: RunnerFactory
) -> None:
    sim = quiet_simulator(40)
    for site in sim.truth.sites()[:5]:
        site.status = "opted_in"
    runner = make_runner(sim)

    outcome = await runner.run(tenant_id, SyncKind.FULL)

    assert outcome.state is SyncState.SUCCEEDED, outcome.error
    async with resources.session_factory() as session:
        assert await mirrored(session, tenant_id) == expected(sim)
    assert outcome.plan is not None
    assert outcome.requests_used == outcome.plan.requests
    assert outcome.rate_limited == 0
    assert outcome.counts.inserted > 0
