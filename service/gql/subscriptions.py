# mypy: disable-error-code="untyped-decorator"
# (strawberry.subscription(description=...) is typed as returning Any)
"""Root subscription fields: ``alertChanged``, ``incidentChanged`` and ``campaignProgress``.

Each listens to the process's :class:`~service.changefeed.ChangeHub` for its tenant's changes and re-reads every
changed row through the key's own scope, as the matching query would: a subtree key never receives a row outside
its subtree, and another tenant's changes never reach it at all. The key is looked up again when a subscription
starts (before its first read) and then before changes as ``api.subscription_key_recheck_seconds`` says: a revoked
or expired key's connection is closed (4403). A client that reads too slowly is disconnected (close code 1013,
"try again later") instead of being buffered for, and so is every client when the process loses its Redis
subscription (the connection dropped or fell silent) or cannot make it, since changes published meanwhile would
be missed: clients reconnect, then re-query. A
change of a kind this process does not know (published by a newer version during a rolling deploy) is skipped.

Subscriptions run over a WebSocket only, and over a WebSocket only subscriptions run (:class:`SubscriptionTransport`):
queries and mutations go over HTTP, where each gets its own context and transaction.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from functools import partial
from typing import TypeVar

import strawberry
import structlog
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from service.campaigns.service import CampaignService
from service.changefeed import ChangeFeedLostError, SlowSubscriberError
from service.core import limits
from service.core.changes import Change, Topic
from service.core.errors import NotFoundError
from service.db.models.notifications import NotificationEventType
from service.gql.campaigns.queries import campaign_of
from service.gql.campaigns.types import Campaign
from service.gql.context import Info
from service.gql.monitoring.types import Alert, Incident
from service.gql.mutation import parse_id
from service.monitoring.service import AlertService
from service.monitoring.sweep import INCIDENT_UPDATED
from service.policy import Action, authorize

log = structlog.get_logger(__name__)

TRY_AGAIN_CLOSE_CODE = 1013
"""WebSocket close code for a client that fell behind, or whose changes the process could not follow (Redis was
lost or unreachable): "try again later": reconnect, then re-query."""
FORBIDDEN_CLOSE_CODE = 4403
"""WebSocket close code for a connection whose key was revoked or expired (graphql-transport-ws' Forbidden)."""


@strawberry.enum(description="What happened to an alert.")
class AlertChangeKind(enum.Enum):
    RAISED = NotificationEventType.ALERT_RAISED.value
    REOPENED = NotificationEventType.ALERT_REOPENED.value
    ACKNOWLEDGED = NotificationEventType.ALERT_ACKNOWLEDGED.value
    CLEARED = NotificationEventType.ALERT_CLEARED.value


@strawberry.enum(description="What happened to an incident.")
class IncidentChangeKind(enum.Enum):
    OPENED = NotificationEventType.INCIDENT_OPENED.value
    UPDATED = INCIDENT_UPDATED
    CLEARED = NotificationEventType.INCIDENT_CLEARED.value


@strawberry.type(description="An alert that changed, as it is now.")
class AlertChange:
    kind: AlertChangeKind
    alert: Alert


@strawberry.type(description="An incident that changed, as it is now.")
class IncidentChange:
    kind: IncidentChangeKind
    incident: Incident


@asynccontextmanager
async def _changes(info: Info, topic: Topic) -> AsyncIterator[AsyncIterator[Change]]:
    """The principal's tenant's changes of ``topic``, live when the block starts (the hub is subscribed)."""
    hub = info.context.changes
    if hub is None:  # not a WebSocket: SubscriptionTransport refused it before it could get here
        raise GraphQLError("subscriptions are served over a WebSocket on /graphql (graphql-transport-ws)")
    await _check_key(info, recheck_seconds=0.0)  # a new subscription reads nothing for a key revoked since init
    principal = info.context.principal
    try:
        async with hub.subscribe(principal.tenant_id, {topic}, holder=principal.key_id) as feed:
            yield _guarded(info, feed)
    except ChangeFeedLostError as exc:
        await _close(info, TRY_AGAIN_CLOSE_CODE, str(exc))


async def _guarded(info: Info, feed: AsyncIterator[Change]) -> AsyncIterator[Change]:
    """``feed`` while the connection's key is valid, the client keeps up and the hub follows the changes; else
    the connection is closed."""
    resources = info.context.resources
    recheck = resources.settings.api.subscription_key_recheck_seconds if resources is not None else 0.0
    try:
        async for change in feed:
            await _check_key(info, recheck)
            yield change
    except (SlowSubscriberError, ChangeFeedLostError) as exc:
        await _close(info, TRY_AGAIN_CLOSE_CODE, str(exc))


async def _check_key(info: Info, recheck_seconds: float) -> None:
    """Close the connection (4403) unless its key is still valid (looked up once ``recheck_seconds`` passed)."""
    if not await info.context.key_still_valid(recheck_seconds):
        await _close(info, FORBIDDEN_CLOSE_CODE, "Forbidden: the key was revoked or has expired")


_Kind = TypeVar("_Kind", bound=enum.Enum)
_Row = TypeVar("_Row")


def _kind_of(kinds: type[_Kind], change: Change) -> _Kind | None:
    """The change's kind, or ``None`` (logged) for a kind this version does not know (a newer process published it
    during a rolling deploy): the change is skipped rather than the subscription ended."""
    try:
        return kinds(change.kind)
    except ValueError:
        log.warning("changes.unknown_kind", topic=change.topic.value, kind=change.kind)
        return None


async def _close(info: Info, code: int, reason: str) -> None:
    """Close the connection, then wait for its handler to cancel this operation (ending it instead would make
    strawberry send "complete" on a closed socket)."""
    socket = info.context.websocket
    if socket is not None:
        await socket.close(code=code, reason=reason[:120])
    await asyncio.Event().wait()


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Alerts as they are raised, reopened, acknowledged or cleared (a subtree "
                                         "key receives its subtree's only); optionally of one site.")
    async def alert_changed(self, info: Info, site_id: int | None = None) -> AsyncGenerator[AlertChange, None]:
        authorize(info.context.principal, Action.ALERT_READ)
        limits.optional_upstream_id(site_id, parameter="siteId")
        async with _changes(info, Topic.ALERT) as changes:
            async for change in changes:
                kind = _kind_of(AlertChangeKind, change)
                if kind is None or (site_id is not None and change.site_id != site_id):
                    continue
                try:
                    alert = await _reread(info, change, partial(_alert, info, change.id))
                except NotFoundError:  # outside the key's subtree
                    continue
                yield AlertChange(kind=kind, alert=alert)

    @strawberry.subscription(description="Incidents as they open, change or clear (a subtree key receives its "
                                         "sites' only, never the fleet-wide one).")
    async def incident_changed(self, info: Info) -> AsyncGenerator[IncidentChange, None]:
        authorize(info.context.principal, Action.ALERT_READ)
        async with _changes(info, Topic.INCIDENT) as changes:
            async for change in changes:
                kind = _kind_of(IncidentChangeKind, change)
                if kind is None:
                    continue
                try:
                    incident = await _reread(info, change, partial(_incident, info, change.id))
                except NotFoundError:
                    continue
                yield IncidentChange(kind=kind, incident=incident)

    @strawberry.subscription(description="A campaign's state and progress: first as it is now, then after every "
                                         "change (each recorded answer, each transition).")
    async def campaign_progress(self, info: Info, id: strawberry.ID) -> AsyncGenerator[Campaign, None]:
        campaign_id = parse_id(id)
        async with _changes(info, Topic.CAMPAIGN) as changes:  # subscribed before the first read: nothing is missed
            yield await _reread(info, None, partial(_campaign, info, campaign_id))
            async for change in changes:
                if change.id == campaign_id:
                    yield await _reread(info, change, partial(_campaign, info, campaign_id))


async def _reread(info: Info, change: Change | None, load: Callable[[AsyncSession], Awaitable[_Row]]) -> _Row:
    """What ``load`` reads on a session of its own (released before the result is sent), through the process's
    change hub: read once per ``change`` for every subscriber of the same read scope (tenant, role, subtree), and
    counted among the process's concurrent re-reads (``None``: the subscription's first read, its own)."""
    hub = info.context.changes
    assert hub is not None  # noqa: S101 - _changes refused a context without one before any read

    async def read() -> _Row:
        async with info.context.session_factory() as session:
            return await load(session)

    if change is None:
        return await hub.gated(read)
    principal = info.context.principal
    return await hub.read(change, (principal.role, principal.restricted_account_id), read)


async def _alert(info: Info, alert_id: uuid.UUID, session: AsyncSession) -> Alert:
    return Alert.from_row(await AlertService(session, info.context.principal).alert(alert_id))


async def _incident(info: Info, incident_id: uuid.UUID, session: AsyncSession) -> Incident:
    return Incident.from_row(await AlertService(session, info.context.principal).incident(incident_id))


async def _campaign(info: Info, campaign_id: uuid.UUID, session: AsyncSession) -> Campaign:
    """The campaign as the key may see it."""
    return await campaign_of(info, session, await CampaignService(session, info.context.principal).get(campaign_id))


class SubscriptionTransport(SchemaExtension):
    """Subscriptions run over a WebSocket only, and a WebSocket runs subscriptions only: queries and mutations
    belong on HTTP, where each request has its own context and transaction (a connection's context lives as long
    as the connection)."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        over_websocket = getattr(context.context, "websocket", None) is not None
        subscription = context.operation_type is OperationType.SUBSCRIPTION
        if subscription and not over_websocket:
            # A subscription's stream starts whatever result is set here; an error raised here ends it instead.
            raise GraphQLError("subscriptions are served over a WebSocket on /graphql (graphql-transport-ws)",
                               extensions={"code": "BAD_REQUEST"})
        if over_websocket and not subscription and context.result is None:
            context.result = GraphQLExecutionResult(data=None, errors=[GraphQLError(
                "only subscriptions run over a WebSocket: send queries and mutations with HTTP POST /graphql",
                extensions={"code": "BAD_REQUEST"})])
        yield


__all__ = ["Subscription", "SubscriptionTransport"]
