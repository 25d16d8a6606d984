"""Authentication of every REST and GraphQL request (shared by both HTTP adapters).

Every request except the health, metrics and API-docs paths (and the docs pages' assets) must carry
``Authorization: Bearer <api key>``.
:class:`ApiKeyAuthenticationMiddleware` resolves it to a :class:`~service.tenants.Principal` (placed in
``connection.user``); handlers receive it as the ``principal`` dependency. What it may do is decided by the
services through :mod:`service.policy` (403 when refused). Missing, unknown, expired and revoked keys get 401,
as problem+json. Guesses (unknown or malformed keys) are counted per client address in Redis: past
``security.auth_failure_limit`` within the window, that address's failed attempts are answered 429 with
``Retry-After``. A valid, active key is always served, whatever its address did: a portal backend serving many
customers must not lose every key to one customer's typo. Keys that exist but are revoked or expired, or whose
tenant is suspended, are refused (401) without counting: they are not guesses.

For the GraphQL adapter: read the principal with :func:`principal_of` (the middleware has already run), or
call :func:`authenticate_connection` on any ``ASGIConnection``.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.base import DefineMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import Redis

from service.core.principal import Principal
from service.db.uow import read_only_sessions
from service.observability import request_id_of
from service.runtime import Resources
from service.settings import Settings
from service.tenants.keycache import ApiKeyCache
from service.tenants.service import AuthenticationError, AuthenticationService

log = structlog.get_logger(__name__)

PUBLIC_PATHS = ["^/healthz$", "^/readyz$", "^/metrics", "^/schema", "^/static/"]
"""Paths served without a key (patterns): liveness, readiness, Prometheus, OpenAPI docs and the docs' assets."""

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="givfleet"'}

PrincipalDep = NamedDependency[Principal]
"""Annotate a handler parameter named ``principal`` with this to receive the caller (the app registers
:func:`provide_principal` as the ``principal`` dependency)."""


class FailedAttemptThrottle:
    """Counts failed authentications per client address in Redis, in a fixed window."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._namespace = settings.redis.namespace
        self._limit = settings.security.auth_failure_limit
        self._window = settings.security.auth_failure_window_seconds

    def _key(self, client: str) -> str:
        return f"{self._namespace}:auth-failures:{client}"

    async def blocked_for(self, client: str) -> int:
        """Seconds the client must wait before trying again (0 when it may try now)."""
        key = self._key(client)
        count = await self._redis.get(key)
        if count is None or int(count) < self._limit:
            return 0
        ttl = int(await self._redis.ttl(key))
        return max(ttl, 1)

    async def record_failure(self, client: str) -> None:
        """Count one failure (the window starts at the first)."""
        key = self._key(client)
        async with self._redis.pipeline(transaction=True) as pipe:
            # SET NX opens the window once; INCR keeps the expiry. (EXPIRE ... NX needs Redis 7; the embedded
            # Redis is 6.2.)
            pipe.set(key, 0, ex=self._window, nx=True)
            pipe.incr(key)
            await pipe.execute()


def client_address(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> str:
    """The caller's address: behind a trusted proxy, the ``X-Forwarded-For`` entry that proxy appended (the last;
    the earlier ones are whatever the client sent, so they could dodge the failure limit or forge the audit log)."""
    if settings.security.trust_forwarded_for:
        entries = [entry.strip() for entry in connection.headers.get("x-forwarded-for", "").split(",")]
        if entries[-1]:
            return entries[-1][:64]
    return connection.client.host if connection.client else "unknown"


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, credentials = header.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else ""


def api_key_cache(connection: ASGIConnection[Any, Any, Any, Any]) -> ApiKeyCache | None:
    """The app's cache of authenticated keys for an HTTP request (``None`` outside the app's lifespan, and for a
    WebSocket, whose ``connection_init`` and periodic re-checks look its key up on purpose)."""
    if connection.scope["type"] != ScopeType.HTTP:
        return None
    cache = getattr(connection.app.state, "api_keys", None)
    return cache if isinstance(cache, ApiKeyCache) else None


async def authenticate_connection(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """Resolve the API key of ``connection`` (its ``Authorization`` header) to its principal.

    Raises:
        NotAuthorizedException: No key, a malformed header, or an unknown/expired/revoked key (401).
        TooManyRequestsException: The key is not valid and this client made too many guesses recently (429).
    """
    return await authenticate_authorization(connection, connection.headers.get("authorization"))


async def authenticate_authorization(connection: ASGIConnection[Any, Any, Any, Any],
                                     authorization: str | None) -> Principal:
    """Resolve an ``Authorization`` value (``Bearer <key>``) presented on ``connection`` to its principal, as
    :func:`authenticate_connection` does (a WebSocket presents it in its ``connection_init`` message).

    Raises:
        NotAuthorizedException: See :func:`authenticate_connection`.
        TooManyRequestsException: See :func:`authenticate_connection`.
    """
    resources: Resources = connection.app.state.resources
    settings = resources.settings
    client = client_address(connection, settings)
    presented = _bearer(authorization)
    if presented is None:
        raise NotAuthorizedException(detail="an API key is required: send 'Authorization: Bearer <key>'",
                                     headers=_CHALLENGE)
    try:
        if not presented:
            raise AuthenticationError("the Authorization header must be 'Bearer <key>'")
        cache, request_id = api_key_cache(connection), request_id_of(connection.scope)
        principal = AuthenticationService.cached(cache, presented, client_address=client, request_id=request_id)
        if principal is None:  # no transaction: one SELECT and, at most once a minute, one UPDATE
            async with read_only_sessions(resources.session_factory)() as session:
                principal = await AuthenticationService(session, cache).authenticate(
                    presented, client_address=client, request_id=request_id)
    except AuthenticationError as exc:
        log.info("auth.failed", client=client, reason=exc.reason, path=connection.url.path)
        throttle = FailedAttemptThrottle(resources.redis, settings)
        wait = await throttle.blocked_for(client)
        if exc.guess:
            await throttle.record_failure(client)
        if wait:
            raise TooManyRequestsException(
                detail=f"too many failed authentication attempts from {client}; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            ) from None
        raise NotAuthorizedException(detail=exc.reason, headers=_CHALLENGE) from None
    return principal


class ApiKeyAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Authenticates every request outside :data:`PUBLIC_PATHS`; binds the tenant and key to the request's logs."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        super().__init__(app, **options)
        inner = self.app

        async def with_log_context(scope: Scope, receive: Receive, send: Send) -> None:
            user = scope.get("user")
            if not isinstance(user, Principal):
                await inner(scope, receive, send)
                return
            with structlog.contextvars.bound_contextvars(tenant_id=str(user.tenant_id), actor=user.actor):
                await inner(scope, receive, send)

        self.app = with_log_context

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        """Resolve the principal (see :func:`authenticate_connection`)."""
        principal = await authenticate_connection(connection)
        return AuthenticationResult(user=principal, auth=principal.key_id)


def authentication_middleware() -> DefineMiddleware:
    """The middleware as registered by ``create_app``."""
    return DefineMiddleware(ApiKeyAuthenticationMiddleware, exclude=PUBLIC_PATHS)


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The principal the middleware resolved for ``connection``.

    Raises:
        NotAuthorizedException: The request was not authenticated (a public path).
    """
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise NotAuthorizedException(detail="this request is not authenticated", headers=_CHALLENGE)
    return user


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The ``principal`` dependency."""
    return principal_of(request)
