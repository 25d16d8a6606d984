# mypy: disable-error-code="untyped-decorator"
# (strawberry.field(description=...) is typed as returning Any)
"""Root query fields: ``campaign`` and ``campaigns``."""

from __future__ import annotations

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from service.campaigns.service import CampaignService
from service.campaigns.upstream import requests_per_minute
from service.campaigns.views import campaign_view
from service.core.errors import InvalidInputError
from service.core.limits import DEFAULT_PAGE_SIZE, page_size
from service.db.models.campaign import Campaign as CampaignRow
from service.db.models.campaign import CampaignState
from service.gql.campaigns.types import Campaign
from service.gql.context import Info
from service.gql.mutation import parse_id
from service.upstream import NoCredentialError


async def campaign_of(info: Info, session: AsyncSession, row: CampaignRow) -> Campaign:
    """A campaign row as GraphQL shows it, with progress and (when the context can reach upstream) the ETA."""
    capacity: int | None = None
    if info.context.resources is not None:
        try:
            capacity = await requests_per_minute(info.context.resources.upstream, info.context.principal.tenant_id)
        except NoCredentialError:
            capacity = None
    progress = await CampaignService(session, info.context.principal).progress(row, capacity)
    return Campaign.of(campaign_view(row, progress))


def _state(text: str | None) -> CampaignState | None:
    if text is None:
        return None
    try:
        return CampaignState(text)
    except ValueError:
        raise InvalidInputError(f"unknown campaign state {text!r}", field="state") from None


@strawberry.type
class CampaignQuery:
    @strawberry.field(description="A campaign by id, with its progress per state and ETA.")
    async def campaign(self, info: Info, id: strawberry.ID) -> Campaign:
        async with info.context.session_factory() as session:
            row = await CampaignService(session, info.context.principal).get(parse_id(id))
            return await campaign_of(info, session, row)

    @strawberry.field(description="The newest campaigns (a subtree key sees only those made by keys restricted "
                                  "to the same account).")
    async def campaigns(self, info: Info, state: str | None = None,
                        first: int = DEFAULT_PAGE_SIZE) -> list[Campaign]:
        async with info.context.session_factory() as session:
            rows = await CampaignService(session, info.context.principal).list(
                state=_state(state), limit=page_size(first, parameter="first"))
            return [await campaign_of(info, session, row) for row in rows]
