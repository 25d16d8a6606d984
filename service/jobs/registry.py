"""Every job the worker runs, under its ``"domain.verb"`` name."""

from __future__ import annotations

from arq.worker import Function, func

from service.jobs.heartbeat import heartbeat

JOBS: list[Function] = [
    func(heartbeat, name="system.heartbeat"),  # type: ignore[arg-type]
]
