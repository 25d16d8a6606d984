"""A sync interrupted by a transient upstream failure, a kill -9 of its worker or a SIGTERM finishes on a later
attempt from its checkpoint (no phase repeated), equal to the simulator's ground truth.

The worker processes are real: ``givfleet worker --queues bulk`` subprocesses on the run's database and Redis
namespace. Time is driven explicitly: the sweeper is ticked with a clock past the lease, an arq retry is made
due at once; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from litestar import Litestar
from sqlalchemy import select

from service.core.clock import utcnow
from service.core.tenancy import TenantId
from service.db.models.api_key import Role
from service.db.models.mirror import SyncKind, SyncRun, SyncState
from service.jobs.enqueue import unit_of_work
from service.jobs.typed import Queue
from service.mirror.cli_view import sync_tenant_now
from service.mirror.jobs import request_sync, sweep_stale, sync_job_id
from service.mirror.repository import MirrorRepository
from service.mirror.runner import SyncOptions
from service.runtime import Resources
from service.settings import Settings, SyncSettings
from service.worker.build import build_worker, drain_queues
from tests.conftest import http_client
from tests.mirror.conftest import GatedSimulator, add_credential
from tests.mirror.truth import expected, mirrored
from tests.tenants.factories import committed_tenant

BATCH = 5
CHECKED_BEFORE_FAULT = 10  # two checkpoints of site statuses
FAULT_AFTER = CHECKED_BEFORE_FAULT + 1  # site-status calls before the fault: discovery's probe, then two batches


@pytest.fixture
async def small_batches(test_settings: Settings) -> AsyncIterator[Resources]:
    """The run's resources with site statuses checkpointed every ``BATCH`` (so a sync has several checkpoints)."""
    settings = test_settings.model_copy(update={"sync": SyncSettings(status_batch=BATCH)})
    opened = Resources.open(settings)
    try:
        yield opened
    finally:
        await opened.aclose()


async def _ask_for_full_sync(resources: Resources, tenant_id: TenantId, served: GatedSimulator) -> None:
    for site in served.sim.truth.sites()[::3]:
        site.status = "opted_out"  # the mirror must take these from the site-status calls
    await add_credential(resources, tenant_id, served.sim.tokens["company"], served.base_url)
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        await request_sync(session, tenant_id, SyncKind.FULL)


async def _run(resources: Resources, tenant_id: TenantId) -> SyncRun:
    """The tenant's one sync run (rows another test left behind are not ours)."""
    async with resources.session_factory() as session:
        return (await session.execute(select(SyncRun).where(SyncRun.tenant_id == tenant_id))).scalar_one()


async def _assert_resumed_and_complete(resources: Resources, tenant_id: TenantId, served: GatedSimulator,
                                       mark: int) -> None:
    """The run succeeded on its second attempt, equal to ground truth, and after ``mark`` only the site statuses
    not yet checkpointed were fetched (no list, no discovery, no status twice)."""
    run = await _run(resources, tenant_id)
    assert run.state is SyncState.SUCCEEDED, run.error
    assert run.attempts == 2
    async with resources.session_factory() as session:
        assert await mirrored(session, tenant_id) == expected(served.sim)
    after = served.gate.since(mark)
    statuses = len(expected(served.sim)["sites"]) - 1  # discovery probed one site already
    assert all(path.endswith("/status") for path in after), after
    assert len(after) == statuses - CHECKED_BEFORE_FAULT


async def test_a_transient_failure_is_retried_by_arq_and_resumes_from_the_checkpoint(
    small_batches: Resources, tenant_id: TenantId, gated_simulator: GatedSimulator
) -> None:
    resources, served = small_batches, gated_simulator
    await _ask_for_full_sync(resources, tenant_id, served)
    served.gate.fail_after = FAULT_AFTER  # then every site-status call answers 503

    await build_worker(resources, Queue.BULK, burst=True, max_burst_jobs=1).main()

    run = await _run(resources, tenant_id)
    assert run.state is SyncState.RUNNING  # not failed: resumable
    assert run.error is not None
    assert "will retry" in run.error
    assert (run.progress.stage, run.progress.status_done) == ("statuses", CHECKED_BEFORE_FAULT)
    queue = resources.redis.queue(Queue.BULK)
    [(job_id, due)] = await resources.redis.zrange(queue, 0, -1, withscores=True)
    assert due > utcnow().timestamp() * 1000  # arq holds the retry back
    served.gate.fail_after = None  # upstream recovers
    mark = len(served.gate.paths)
    await resources.redis.zadd(queue, {job_id: utcnow().timestamp() * 1000})  # the back-off has passed

    await drain_queues(resources, [Queue.BULK])

    await _assert_resumed_and_complete(resources, tenant_id, served, mark)


def _worker_env(settings: Settings) -> dict[str, str]:
    database_url, redis_url = settings.configured_database_url(), settings.configured_redis_url()
    assert database_url is not None
    assert redis_url is not None
    return {
        **os.environ,
        "GIVFLEET_DATABASE_URL": database_url,
        "GIVFLEET_REDIS_URL": redis_url,
        "GIVFLEET_REDIS__NAMESPACE": settings.redis.namespace,
        "GIVFLEET_HOME": str(settings.home),
        "GIVFLEET_SYNC__STATUS_BATCH": str(BATCH),
        "GIVFLEET_LOG__JSON_OUTPUT": "true",
    }


async def _start_worker(settings: Settings, **extra: str) -> asyncio.subprocess.Process:
    """``givfleet worker --queues bulk`` in a subprocess of its own."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from service.cli import main; main()", "worker", "--queues", "bulk",
        env={**_worker_env(settings), **extra}, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _worker_mid_statuses(resources: Resources, tenant_id: TenantId, served: GatedSimulator,
                               **env: str) -> asyncio.subprocess.Process:
    """Ask for a full sync, start a worker subprocess, and return once it is mid-statuses: past two checkpoints,
    its next site-status call held by the simulator's gate."""
    await _ask_for_full_sync(resources, tenant_id, served)
    served.gate.hold_after = FAULT_AFTER
    worker = await _start_worker(resources.settings, **env)
    await asyncio.wait_for(served.gate.reached.wait(), timeout=120)
    return worker


def _open_gate(served: GatedSimulator) -> int:
    """Let the simulator answer again; returns how many requests it had seen."""
    served.gate.hold_after = None
    served.gate.release.set()
    return len(served.gate.paths)


async def test_a_worker_killed_mid_statuses_is_picked_up_after_one_sweeper_tick(
    small_batches: Resources, tenant_id: TenantId, gated_simulator: GatedSimulator
) -> None:
    resources, served = small_batches, gated_simulator
    worker = await _worker_mid_statuses(resources, tenant_id, served)

    worker.kill()  # kill -9: no cleanup, the lease row and arq's in-progress mark stay behind
    await worker.wait()
    mark = _open_gate(served)
    run = await _run(resources, tenant_id)
    assert run.state is SyncState.RUNNING
    assert run.lease_owner is not None  # the dead worker's
    assert run.progress.status_done == CHECKED_BEFORE_FAULT

    # One sweeper tick once the lease has lapsed: the run is released and its job made runnable again.
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        revived = await sweep_stale(session, utcnow() + timedelta(seconds=resources.settings.worker.stall_seconds + 1))
    assert len(revived) == 1
    await drain_queues(resources, [Queue.BULK])  # the restarted worker

    await _assert_resumed_and_complete(resources, tenant_id, served, mark)


async def _log_line(worker: asyncio.subprocess.Process, event: str) -> None:
    assert worker.stderr is not None
    while True:
        line = await worker.stderr.readline()
        assert line, f"the worker exited before logging {event}"
        if event.encode() in line:
            return


async def _sigterm_mid_statuses(resources: Resources, tenant_id: TenantId, served: GatedSimulator,
                                 grace_seconds: int) -> asyncio.subprocess.Process:
    """A worker subprocess mid-statuses (shutdown grace period ``grace_seconds``), sent SIGTERM."""
    worker = await _worker_mid_statuses(resources, tenant_id, served,
                                        GIVFLEET_WORKER__SHUTDOWN_GRACE_SECONDS=str(grace_seconds))  # fmt: skip
    worker.send_signal(signal.SIGTERM)
    return worker


async def test_sigterm_mid_job_lets_the_sync_finish_within_the_grace_period(
    small_batches: Resources, tenant_id: TenantId, gated_simulator: GatedSimulator
) -> None:
    resources, served = small_batches, gated_simulator
    worker = await _sigterm_mid_statuses(resources, tenant_id, served, grace_seconds=120)
    await asyncio.wait_for(_log_line(worker, "worker.stopping"), timeout=60)  # it stopped taking jobs
    _open_gate(served)
    assert await asyncio.wait_for(worker.wait(), timeout=120) == 0

    run = await _run(resources, tenant_id)
    assert run.state is SyncState.SUCCEEDED, run.error
    assert run.attempts == 1
    async with resources.session_factory() as session:
        assert await mirrored(session, tenant_id) == expected(served.sim)


async def test_sigterm_past_the_grace_period_leaves_the_sync_resumable(
    small_batches: Resources, tenant_id: TenantId, gated_simulator: GatedSimulator
) -> None:
    resources, served = small_batches, gated_simulator
    worker = await _sigterm_mid_statuses(resources, tenant_id, served, grace_seconds=0)
    assert await asyncio.wait_for(worker.wait(), timeout=120) == 0
    mark = _open_gate(served)
    run = await _run(resources, tenant_id)
    assert run.state is SyncState.RUNNING
    assert run.lease_owner is None  # released: the next worker takes it at once, no sweeper needed
    assert run.progress.status_done == CHECKED_BEFORE_FAULT
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        assert await sweep_stale(session, utcnow()) == []  # arq re-queued the job: no second one

    await drain_queues(resources, [Queue.BULK])

    await _assert_resumed_and_complete(resources, tenant_id, served, mark)


async def test_asking_for_a_sync_stranded_by_a_dead_worker_makes_it_run_now(
    small_batches: Resources, app: Litestar, gated_simulator: GatedSimulator, clean_db: None
) -> None:
    resources, served = small_batches, gated_simulator
    tenant = await committed_tenant(resources, Role.OPERATOR)
    await _ask_for_full_sync(resources, tenant.tenant_id, served)
    # What a worker killed long ago leaves: its lease on the run, lapsed, and arq's in-progress mark of the job
    # (which arq itself would keep for the job's whole 6 h timeout).
    job_id = f"{resources.redis.namespace}:{sync_job_id(tenant.tenant_id, SyncKind.FULL)}"
    await resources.redis.set(f"arq:in-progress:{job_id}", b"1", px=6 * 3600 * 1000)
    async with resources.session_factory() as session, session.begin():
        run = (await session.execute(select(SyncRun))).scalar_one()
        run.lease_owner, run.attempts = "dead-host:1:0", 1
        run.lease_expires_at = utcnow() - timedelta(minutes=5)

    async with http_client(app) as client:
        response = await client.post("/api/v1/sync-runs", json={"kind": "full"}, headers=tenant.headers)
    assert response.status_code == 202

    await asyncio.wait_for(drain_queues(resources, [Queue.BULK]), timeout=120)  # runs now, not in 6 h
    run = await _run(resources, tenant.tenant_id)
    assert run.state is SyncState.SUCCEEDED, run.error
    async with resources.session_factory() as session:
        assert await mirrored(session, tenant.tenant_id) == expected(served.sim)


async def test_a_full_sync_asked_over_a_stranded_refresh_is_the_sync_that_runs(
    resources: Resources, tenant_id: TenantId, gated_simulator: GatedSimulator
) -> None:
    # An interrupted `givfleet sync` refresh leaves its run with its lease lapsed at once; the scheduler's next full
    # sync must not be taken for it (reviving the refresh and dropping the full sync until the next interval).
    served = gated_simulator
    await add_credential(resources, tenant_id, served.sim.tokens["company"], served.base_url)
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        await request_sync(session, tenant_id, SyncKind.REFRESH)
    async with resources.session_factory() as session, session.begin():
        run = (await session.execute(select(SyncRun).where(SyncRun.tenant_id == tenant_id))).scalar_one()
        run.attempts, run.lease_expires_at = 1, utcnow() - timedelta(seconds=1)

    async with unit_of_work(resources.session_factory, resources.redis) as session:
        asked = await request_sync(session, tenant_id, SyncKind.FULL)
    assert asked == (sync_job_id(tenant_id, SyncKind.FULL), SyncKind.FULL)

    await asyncio.wait_for(drain_queues(resources, [Queue.BULK]), timeout=120)
    async with resources.session_factory() as session:
        runs = (await session.execute(select(SyncRun).where(SyncRun.tenant_id == tenant_id))).scalars().all()
    assert (SyncKind.FULL, SyncState.SUCCEEDED) in {(run.kind, run.state) for run in runs}
    assert all(run.state is SyncState.SUCCEEDED for run in runs)


FETCHED_BEFORE_CTRL_C = 7  # fewer than one checkpoint batch (the default, 200, is more than the fleet's sites)


async def test_an_interrupted_cli_sync_is_resumed_at_once_without_fetching_anything_again(
    resources: Resources, tenant_id: TenantId, gated_simulator: GatedSimulator
) -> None:
    served = gated_simulator
    for site in served.sim.truth.sites()[::3]:
        site.status = "opted_out"
    await add_credential(resources, tenant_id, served.sim.tokens["company"], served.base_url)
    served.gate.hold_after = 1 + FETCHED_BEFORE_CTRL_C  # discovery's probe, then the statuses answered
    # One request at a time, so exactly the statuses before the held one have arrived when Ctrl-C comes.
    options = SyncOptions(concurrency=1)
    cli = asyncio.create_task(sync_tenant_now(resources, tenant_id, SyncKind.FULL, options=options))
    await asyncio.wait_for(served.gate.reached.wait(), timeout=60)

    cli.cancel()  # what Ctrl-C does to `givfleet sync`
    await asyncio.wait([cli])
    assert cli.cancelled()
    mark = _open_gate(served)
    run = await _run(resources, tenant_id)
    assert run.state is SyncState.RUNNING
    assert run.lease_owner is None
    assert run.progress.status_done == FETCHED_BEFORE_CTRL_C  # the part of the batch fetched is kept
    planned = run.planned_requests

    # Resumable now: the sweeper's next tick revives it (not once the interrupted attempt's lease has lapsed),
    # and a `givfleet sync` started meanwhile takes it or joins it; only one of them runs it.
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        assert len(await sweep_stale(session, utcnow())) == 1
    again = asyncio.create_task(sync_tenant_now(resources, tenant_id, SyncKind.FULL, options=options))
    await asyncio.wait_for(drain_queues(resources, [Queue.BULK]), timeout=120)
    outcome, _ = await asyncio.wait_for(again, timeout=120)

    assert outcome.state is SyncState.SUCCEEDED, outcome.error
    run = await _run(resources, tenant_id)
    assert run.state is SyncState.SUCCEEDED, run.error
    assert run.attempts == 2
    assert run.requests_used == run.planned_requests == planned  # the first attempt's plan: nothing fetched twice
    statuses = len(expected(served.sim)["sites"]) - 1  # discovery probed one site already
    after = served.gate.since(mark)
    assert all(path.endswith("/status") for path in after), after
    assert len(after) == statuses - FETCHED_BEFORE_CTRL_C
    async with resources.session_factory() as session:
        assert await mirrored(session, tenant_id) == expected(served.sim)


async def test_a_ctrl_c_whose_checkpoint_fails_still_leaves_the_run_resumable(
    resources: Resources, tenant_id: TenantId, gated_simulator: GatedSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = gated_simulator
    await add_credential(resources, tenant_id, served.sim.tokens["company"], served.base_url)
    served.gate.hold_after = 1 + FETCHED_BEFORE_CTRL_C
    cli = asyncio.create_task(sync_tenant_now(resources, tenant_id, SyncKind.FULL,
                                              options=SyncOptions(concurrency=1)))
    await asyncio.wait_for(served.gate.reached.wait(), timeout=60)

    async def database_gone(*args: object, **kwargs: object) -> int:
        raise ConnectionResetError("the database went away")

    monkeypatch.setattr(MirrorRepository, "set_site_statuses", database_gone)
    cli.cancel()
    await asyncio.wait([cli])
    _open_gate(served)

    assert cli.cancelled()  # still an interruption, not a failure that ended the run
    run = await _run(resources, tenant_id)
    assert (run.state, run.lease_owner) == (SyncState.RUNNING, None)
    assert run.progress.status_done == 0  # nothing stored, nothing claimed: the next attempt asks for them again
