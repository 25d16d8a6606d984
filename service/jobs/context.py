"""The typed context every job receives."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, TypedDict

from arq.connections import ArqRedis

if TYPE_CHECKING:
    # Only for the annotation: importing service.runtime would pull in service.upstream and through it the
    # tenants domain, which job declarations must not depend on.
    from service.runtime import Resources


class JobContext(TypedDict, total=False):
    """What arq passes as ``ctx``: its own keys plus the process's shared :class:`Resources`."""

    # Set by arq for every job.
    redis: ArqRedis
    job_id: str
    job_try: int
    enqueue_time: datetime
    score: int
    # Set by givfleet at worker start-up.
    resources: Resources
