"""An attempt whose lease is taken over (by the sweeper, while it stalled) stops at once: no further upstream
request, no checkpoint written over the run's new holder."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from service.core.clock import utcnow
from service.core.tenancy import TenantId
from service.db.models.mirror import SyncKind, SyncRun, SyncState
from service.mirror.repository import SyncRunRepository
from service.mirror.runner import LeaseLostError, SyncOptions, SyncRunner
from service.runtime import Resources
from service.settings import Settings
from tests.mirror.conftest import GatedSimulator, add_credential

BATCH = 5
HELD_AT = 2 * BATCH + 2  # discovery's probe, two checkpointed batches, then the first call of the third batch


async def test_an_attempt_losing_its_lease_stops_fetching_at_once(
    test_settings: Settings, tenant_id: TenantId, gated_simulator: GatedSimulator
) -> None:
    # Upstream requests that never time out: only the heartbeat can stop the attempt waiting on the held one.
    patient = test_settings.givenergy.model_copy(update={"timeout_seconds": 3600.0})
    resources = Resources.open(test_settings.model_copy(update={"givenergy": patient}))
    try:
        await _lose_the_lease_mid_statuses(resources, tenant_id, gated_simulator)
    finally:
        await resources.aclose()


async def _lose_the_lease_mid_statuses(resources: Resources, tenant_id: TenantId, served: GatedSimulator) -> None:
    await add_credential(resources, tenant_id, served.sim.tokens["company"], served.base_url)
    # A short lease, so the heartbeat looks at the lease many times while the attempt waits on upstream.
    options = SyncOptions(page_size=25, status_batch=BATCH, concurrency=1, lease=timedelta(milliseconds=30))
    runner = SyncRunner(resources.engine, resources.session_factory, resources.upstream.sync_target, options)
    served.gate.hold_after = HELD_AT - 1
    attempt = asyncio.create_task(runner.run(tenant_id, SyncKind.FULL))
    await asyncio.wait_for(served.gate.reached.wait(), timeout=60)
    statuses = served.gate.statuses

    async with resources.session_factory() as session, session.begin():  # what the sweeper does
        run = (await session.execute(select(SyncRun).with_for_update())).scalar_one()
        run.lease_owner = None

    await asyncio.wait([attempt], timeout=60)  # a bound, not a timing: the gate stays closed
    assert attempt.done(), "the attempt is still waiting on upstream after losing its lease"
    with pytest.raises(LeaseLostError):
        attempt.result()  # it abandoned the held request

    assert served.gate.statuses == statuses  # not one request more
    async with resources.session_factory() as session:
        run = (await session.execute(select(SyncRun))).scalar_one()
    assert run.state is SyncState.RUNNING
    assert run.lease_owner is None
    assert run.progress.status_done == 2 * BATCH


async def test_a_lease_taken_while_an_attempt_waited_for_the_lock_is_seen_taken(
    resources: Resources, tenant_id: TenantId
) -> None:
    """An attempt asked for a run reads it before it locks it (is it finished already?); another attempt that
    takes the released lease meanwhile must be seen holding it once the lock is ours, or both would run it."""
    now = utcnow()
    async with resources.session_factory() as session, session.begin():
        run = await SyncRunRepository(session, tenant_id).new_run(SyncKind.FULL, now=now, job_id=None,
                                                                  lease_owner=None, lease_expires_at=now)  # fmt: skip
        assert run is not None
    async with resources.session_factory() as waiting, waiting.begin():
        runs = SyncRunRepository(waiting, tenant_id)
        seen = await runs.get(run.id)  # unlocked: the run is released
        assert seen is not None
        assert seen.lease_owner is None
        async with resources.session_factory() as other, other.begin():
            taken = await SyncRunRepository(other, tenant_id).running(for_update=True)
            assert taken is not None
            taken.lease_owner, taken.lease_expires_at = "other-attempt", now + timedelta(minutes=1)

        locked = await runs.running(for_update=True)
        assert locked is not None
        assert locked.lease_owner == "other-attempt"
