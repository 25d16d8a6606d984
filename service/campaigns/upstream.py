"""Campaigns upstream: the campaign lane of the one upstream entry point (:mod:`service.upstream`).

Campaign requests go through the credential's shared limiter in :attr:`Lane.CAMPAIGN`, the lowest lane, so
monitoring and interactive reads are never starved by a bulk run.
"""

from __future__ import annotations

from service.core.tenancy import TenantId
from service.givenergy import Lane
from service.upstream import Upstream

CAMPAIGN_LANE = Lane.CAMPAIGN


async def requests_per_minute(upstream: Upstream, tenant_id: TenantId) -> int:
    """What the campaign lane can expect to send per minute at the credential's tier, now.

    Raises:
        NoCredentialError: The tenant has no usable API token.
    """
    budget = await upstream.budget(await upstream.choose(tenant_id))
    capacity: int = await budget.capacity(CAMPAIGN_LANE, horizon_seconds=60)
    return max(1, capacity)
