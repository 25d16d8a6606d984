"""The ASGI app: ``/v1`` (cloud API with auth, limits and errors), ``/GivManage/api`` (legacy), ``/_simulator``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from service.simulator.cloud import CloudApi, Ctx, Spec
from service.simulator.legacy import LegacyApi
from service.simulator.ratelimit import Decision
from service.simulator.records import Token
from service.simulator.sidedoor import SideDoor
from service.simulator.web import (
    HttpError,
    Receive,
    Request,
    Response,
    Route,
    Router,
    Scope,
    Send,
    lifespan,
    not_found,
    read_request,
    send_response,
)

if TYPE_CHECKING:
    from service.simulator.core import Simulator

logger = logging.getLogger(__name__)

App = Callable[[Scope, Receive, Send], Awaitable[None]]

_SERVER_ERROR_MESSAGES = {
    500: "Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class SimulatorApp:
    """Dispatches requests to the three surfaces and applies the cloud API's cross-cutting rules."""

    def __init__(self, sim: Simulator) -> None:
        """Register every route."""
        self.sim = sim
        self.cloud_router = Router()
        CloudApi(sim).routes(self.cloud_router)
        self.legacy_router = Router()
        LegacyApi(sim).routes(self.legacy_router)
        self.side_router = Router()
        SideDoor(sim).routes(self.side_router)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = await read_request(scope, receive)
        try:
            if request.path.startswith("/v1/") or request.path == "/v1":
                response = await self.cloud(request)
            elif request.path.startswith("/GivManage/api/"):
                response = await self.plain(self.legacy_router, request)
            elif request.path.startswith("/_simulator/"):
                response = await self.plain(self.side_router, request)
            else:
                response = Response(404, {"message": "Not Found"})
        except HttpError as error:
            response = Response(error.status, error.body, error.headers)
        except Exception:  # a simulator bug must still answer like a server, and be visible in the log
            logger.exception("simulator error on %s %s", request.method, request.path)
            response = Response(500, {"message": "Server Error"})
        # A request that may have changed the world (a clock move reports itself, through the clock's on_move).
        if request.method != "GET" and response.status < 400 and not request.path.startswith("/_simulator/clock/"):
            self.sim.changed()
        await send_response(send, response)

    async def plain(self, router: Router, request: Request) -> Response:
        """Routes without auth or limits (legacy portal, side door)."""
        found = router.match(request.method, request.path)
        if found is None:
            raise not_found()
        route, params = found
        request.params = params
        self.sim.now()
        result: Response = await route.handler(request)
        return result

    async def cloud(self, request: Request) -> Response:
        """A v1 request: route, authenticate, count, check badges, maybe fail, handle."""
        sim = self.sim
        cfg = sim.config
        early: HttpError | None = None
        found: tuple[Route, dict[str, str]] | None = None
        try:
            found = self.cloud_router.match(request.method, request.path)
        except HttpError as error:
            early = error
        token = self._authenticate(request)
        if token is None:
            headers = {"X-RateLimit-Limit": str(cfg.rate_limit_per_window),
                       "X-RateLimit-Remaining": str(cfg.rate_limit_per_window)}  # fmt: skip
            return Response(401, {"message": "Unauthenticated."}, headers)
        spec: Spec | None = found[0].meta if found else None
        decision = self._limit(token, spec)
        headers = decision.headers()
        if not decision.allowed:
            sim.count(token.name, 429)
            return Response(429, {"message": "Too Many Attempts."}, headers)
        try:
            response = await self._dispatch(request, token, found, early, spec)
        except HttpError as error:
            response = Response(error.status, error.body, error.headers)
        response.headers.update(headers)
        sim.count(token.name, response.status)
        return response

    async def _dispatch(
        self,
        request: Request,
        token: Token,
        found: tuple[Route, dict[str, str]] | None,
        early: HttpError | None,
        spec: Spec | None,
    ) -> Response:
        sim = self.sim
        if not token.subscribed:
            status = sim.config.no_subscription_status
            raise HttpError(status, {"message": "An active API subscription is required to use the API."})
        if early is not None:
            raise early
        if found is None or spec is None:
            raise not_found()
        route, params = found
        account = sim.fleet.accounts[token.account_id]
        if not all(token.has_scope(scope) for scope in spec.scopes):
            raise HttpError(403, {"message": "Invalid scope(s) provided."})
        if account.type < spec.min_type or (spec.only and account.type != spec.min_type):
            raise HttpError(403, {"message": "This action is unauthorized."})
        if spec.approved and not token.approved:
            raise HttpError(403, {"message": "This endpoint is only accessible by approved users."})
        failure = sim.random_server_error()
        if failure is not None:
            raise HttpError(failure, {"message": _SERVER_ERROR_MESSAGES[failure]})
        request.params = params
        ctx = Ctx(token=token, account=account, now=sim.now())
        result: Response = await route.handler(request, ctx)
        return result

    def _authenticate(self, request: Request) -> Token | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        return self.sim.token(value.strip())

    def _limit(self, token: Token, spec: Spec | None) -> Decision:
        cfg = self.sim.config
        if spec is not None and spec.bucket == "notification":
            limit, window, bucket = cfg.notification_limit, cfg.notification_window_seconds, "notification"
        else:
            limit = token.rate_limit if token.rate_limit is not None else cfg.rate_limit_per_window
            window, bucket = cfg.rate_limit_window_seconds, "global"
        if not cfg.rate_limits_enabled:
            return self.sim.limiter.peek(token.value, bucket, limit, window)
        return self.sim.limiter.hit(token.value, bucket, limit, window)


def build_app(sim: Simulator) -> SimulatorApp:
    """The ASGI app of a simulator."""
    return SimulatorApp(sim)
