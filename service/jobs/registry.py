"""Every job the worker runs, under its ``"domain.verb"`` name, and the cron jobs."""

from __future__ import annotations

from arq import cron
from arq.cron import CronJob
from arq.worker import Function, func

from service.jobs.heartbeat import heartbeat
from service.mirror.jobs import schedule_syncs, sync_tenant
from service.mirror.service import SCHEDULE_JOB, SYNC_JOB

JOBS: list[Function] = [
    func(heartbeat, name="system.heartbeat"),  # type: ignore[arg-type]
    # A sync's job id is per tenant and kind; keeping its result briefly frees the id for the next schedule.
    # An explicit full sync of a large fleet runs for hours at 300 requests/minute (a retry resumes it).
    func(sync_tenant, name=SYNC_JOB, keep_result=60, max_tries=5, timeout=6 * 3600),  # type: ignore[arg-type]
]

CRON_JOBS: list[CronJob] = [
    cron(schedule_syncs, name=SCHEDULE_JOB, second=0, unique=True),  # type: ignore[arg-type]  # every minute
]
