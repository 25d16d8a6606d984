"""The composition root: :func:`create_app` is the one place the Litestar app is assembled."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

from service.api.admin import AccessController
from service.api.campaigns import CampaignController
from service.api.dependencies import provide_db_session, provide_key_ring, provide_read_session
from service.api.errors import EXCEPTION_HANDLERS
from service.api.firmware_watches import FirmwareWatchController
from service.api.fleet import FleetController
from service.api.health import HealthController
from service.api.live import LiveController
from service.api.monitoring import MonitoringController
from service.api.notifications import NotificationController
from service.api.openapi import TimeOfDaySchemaPlugin
from service.api.query_string import OPEN_QUERY_STRING, QueryStringMiddleware
from service.api.sync import SyncController
from service.api.timeouts import BodyTimeoutMiddleware
from service.authn import authentication_middleware, provide_principal
from service.changefeed import CHANGES, ChangeHub
from service.db.uow import listen_locally
from service.docs_pages import docs_router, openapi_render_plugins, static_assets_router
from service.gql.http import graphql_controller
from service.observability import RequestIdMiddleware
from service.runtime import Resources
from service.settings import Settings, get_settings
from service.subscription import RedisSubscription
from service.tenants.keycache import REVOCATIONS, ApiKeyCache

GC_THRESHOLDS = (20_000, 50, 100)
"""Young-generation collections every 20,000 net allocations instead of 700: a page of 100 inverters allocates
tens of thousands of short-lived objects, which reference counting frees without the collector's help."""


def settle_heap() -> None:
    """Once start-up is done: collect, then freeze what survives (modules, the GraphQL schema, the app) so no
    later collection walks it again, and make collections rarer (:data:`GC_THRESHOLDS`). Full collections of
    the whole heap were most of the API's p95 tail."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app(settings: Settings | None = None, resources: Resources | None = None) -> Litestar:
    """Assemble the app.

    Args:
        settings: Configuration with resolved database and Redis URLs (defaults to the environment's).
        resources: Already-open resources to share (e.g. with an in-process worker); when given, the caller
            closes them. Otherwise the app opens its own at start-up and closes them at shutdown.
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = resources is None
        app.state.resources = current = resources or Resources.open(settings)
        subscription = RedisSubscription(current.redis.connection_pool)  # the process's one, for both listeners
        app.state.changes = changes = ChangeHub(
            capacity=settings.api.subscription_backlog,
            subscribe_timeout=settings.api.subscription_init_timeout_seconds,
            concurrent_reads=max(1, settings.db.pool_size // 4), per_key=settings.api.subscriptions_per_key)
        app.state.api_keys = keys = ApiKeyCache(settings.security.api_key_cache_seconds, subscription)
        subscription.listen(current.redis.channel(CHANGES), changes)
        subscription.listen(current.redis.channel(REVOCATIONS), keys)
        subscription.start()
        stop_local = listen_locally(REVOCATIONS, keys.receive)
        settle_heap()
        try:
            yield
        finally:
            stop_local()
            changes.close()  # first: live subscriptions end cleanly, not as if Redis were lost
            await subscription.aclose()
            if owned:
                await app.state.resources.aclose()

    def provide_resources(state: State) -> Resources:
        current: Resources = state.resources
        return current

    prometheus = PrometheusConfig(
        app_name="givfleet", prefix="givfleet_http", group_path=True, exclude=["/metrics", "/healthz"]
    )

    class MetricsController(PrometheusController):
        path = "/metrics"
        include_in_schema = False

    return Litestar(
        route_handlers=[HealthController, MetricsController, AccessController, FleetController, LiveController,
                        SyncController, CampaignController, FirmwareWatchController, MonitoringController,
                        NotificationController,
                        graphql_controller(settings.api, handler_opt={OPEN_QUERY_STRING: True}),
                        static_assets_router()],
        dependencies={
            "resources": Provide(provide_resources, sync_to_thread=False),
            "db_session": Provide(provide_db_session),
            "read_session": Provide(provide_read_session),
            "principal": Provide(provide_principal, sync_to_thread=False),
            "key_ring": Provide(provide_key_ring, sync_to_thread=False),
        },
        middleware=[RequestIdMiddleware,
                    DefineMiddleware(BodyTimeoutMiddleware, timeout_seconds=settings.api.body_timeout_seconds),
                    prometheus.middleware, authentication_middleware(), QueryStringMiddleware],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="givfleet", version="0.1.0", openapi_router=docs_router("/schema"),
            render_plugins=openapi_render_plugins(),
            components=Components(security_schemes={"apiKey": SecurityScheme(
                type="http", scheme="bearer", description="A givfleet API key: 'Authorization: Bearer <key>'.")}),
            security=[{"apiKey": []}],
        ),
        plugins=[TimeOfDaySchemaPlugin()],
        logging_config=None,  # service.observability configures logging for every entry point
        debug=settings.api.debug,
    )

