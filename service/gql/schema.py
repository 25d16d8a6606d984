"""The root schema: per-domain query and mutation types merged into one ``Query`` and one ``Mutation``, the
``Subscription`` root (:mod:`service.gql.subscriptions`), limits and the error policy.

``export_sdl()`` renders it as SDL; ``givfleet export-schema`` writes that to ``graphql/schema.graphql`` and a
test fails when the committed file differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from service.gql.campaigns.firmware import FirmwareWatchMutation, FirmwareWatchQuery
from service.gql.campaigns.mutations import CampaignMutation
from service.gql.campaigns.queries import CampaignQuery
from service.gql.context import ReleaseReads
from service.gql.errors import ErrorPolicy
from service.gql.limits import limit_extensions
from service.gql.mirror import types as mirror_types
from service.gql.mirror.live import LiveQuery
from service.gql.mirror.mutations import MirrorMutation
from service.gql.mirror.queries import MirrorQuery
from service.gql.monitoring.mutations import MonitoringMutation
from service.gql.monitoring.queries import MonitoringQuery
from service.gql.notifications.mutations import NotificationMutation
from service.gql.notifications.queries import NotificationQuery
from service.gql.subscriptions import Subscription, SubscriptionTransport
from service.gql.tenants.mutations import TenantsMutation
from service.gql.types.viewer import ViewerQuery

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "graphql" / "schema.graphql"

Query = merge_types("Query", (ViewerQuery, MirrorQuery, LiveQuery, CampaignQuery, FirmwareWatchQuery,
                              MonitoringQuery, NotificationQuery))
# Every mutation follows service.gql.mutation (one unit of work, payload with typed errors).
Mutation = merge_types("Mutation", (MirrorMutation, TenantsMutation, CampaignMutation, FirmwareWatchMutation,
                                    MonitoringMutation, NotificationMutation))
# Every Node implementation, so `node(id:)` can return any of them.
NODE_TYPES: list[type] = [mirror_types.Account, mirror_types.Site, mirror_types.Dongle, mirror_types.Inverter,
                          mirror_types.BatteryModule, mirror_types.Meter, mirror_types.InverterChange,
                          mirror_types.SyncRun]


class GivfleetSchema(strawberry.Schema):
    """A schema whose errors are logged by :class:`ErrorPolicy` (unexpected ones only, with the request id)
    instead of strawberry's default logger (which would log every "not found" with a traceback)."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        return None


def build_schema(**limits: Any) -> GivfleetSchema:
    """The schema; ``limits`` override :func:`service.gql.limits.limit_extensions`' defaults (tests)."""
    # Parsing and validating a document costs more than running a small query: both are cached per (small)
    # document text (the validation rules, depth and aliases, depend on the document only; the cost limit, which
    # depends on the variables, runs at execution).
    extensions: list[Any] = [*limit_extensions(**limits), SubscriptionTransport, ErrorPolicy, ReleaseReads]
    typed: list[type[SchemaExtension]] = extensions
    return GivfleetSchema(query=Query, mutation=Mutation, subscription=Subscription, types=NODE_TYPES,
                          extensions=typed)


schema = build_schema()


def export_sdl() -> str:
    """The schema as SDL text, ending in a newline."""
    return schema.as_str().rstrip() + "\n"
