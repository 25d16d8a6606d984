"""Every job the workers run (each declared next to its function with :func:`service.jobs.typed.job`)."""

from __future__ import annotations

from typing import Any

from service.campaigns.jobs import campaign_tick, sweep
from service.jobs.typed import JobSpec
from service.mirror.jobs import schedule_syncs, sweep_syncs, sync_tenant
from service.monitoring.jobs import run_cycle, schedule_cycles
from service.notifications.jobs import flush_channel, relay_events, send_message, sweep_notifications
from service.worker.heartbeat import heartbeat

JOBS: list[JobSpec[Any]] = [heartbeat, sync_tenant, schedule_syncs, sweep_syncs, campaign_tick, sweep, run_cycle,
                             schedule_cycles, relay_events, flush_channel, send_message, sweep_notifications]
