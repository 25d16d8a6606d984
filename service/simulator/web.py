"""A tiny ASGI layer: requests, JSON responses and a regex router.

The simulator answers at a few thousand requests per second on one core; a full web framework would add
nothing here and would put its own error bodies where the real service's must appear.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_INVALID = object()


class HttpError(Exception):
    """Abort a request with a status and a JSON body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def invalid(errors: dict[str, list[str]]) -> HttpError:
    """The documented 422 answer."""
    return HttpError(422, {"message": "The given data was invalid.", "errors": errors})


def not_found() -> HttpError:
    """A 404 answer in the real service's words."""
    return HttpError(404, {"message": "Not Found"})


@dataclass(slots=True)
class Request:
    """An incoming HTTP request."""

    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes
    base_url: str
    params: dict[str, str] = field(default_factory=dict)
    _query: dict[str, list[str]] | None = None
    _json: Any = None

    @property
    def query(self) -> dict[str, list[str]]:
        """Query parameters (every value of each name)."""
        if self._query is None:
            self._query = parse_qs(self.query_string, keep_blank_values=True)
        return self._query

    def arg(self, name: str) -> str | None:
        """The first value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else None

    def args(self, name: str) -> list[str]:
        """Every value of an array query parameter (``name[]=`` or ``name[0]=`` forms)."""
        found: list[str] = []
        for key, values in self.query.items():
            if key == name or key == f"{name}[]" or re.fullmatch(rf"{re.escape(name)}\[\d+\]", key):
                found.extend(values)
        return found

    def json(self) -> Any:
        """The JSON body (an empty object when there is none); 400 when it is not JSON."""
        if self._json is None:
            if not self.body.strip():
                self._json = {}
            else:
                try:
                    self._json = json.loads(self.body)
                except ValueError:
                    raise HttpError(400, {"message": "The request body is not valid JSON."}) from None
        return self._json

    def form(self) -> dict[str, str]:
        """Form fields merged over query parameters (legacy portal calls use either)."""
        merged = {key: values[0] for key, values in self.query.items() if values}
        if self.body and "json" in self.headers.get("content-type", ""):
            data = self.json()
            if isinstance(data, dict):
                merged.update({key: str(value) for key, value in data.items()})
        elif self.body:
            for key, values in parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True).items():
                merged[key] = values[0]
        return merged

    @property
    def url(self) -> str:
        """Absolute URL without the query string."""
        return f"{self.base_url}{self.path}"

    def cookie(self, name: str) -> str | None:
        """A cookie value."""
        for part in self.headers.get("cookie", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
        return None


@dataclass(slots=True)
class Response:
    """An outgoing JSON response."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[..., Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Route:
    """A method, a path pattern with ``{name}`` placeholders, and the handler with its metadata."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    meta: Any


class Router:
    """Matches method and path; placeholders ``{name}`` match one path segment."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, path: str, handler: Handler, meta: Any = None) -> None:
        """Register a route."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
        self._routes.append(Route(method, re.compile(f"^{regex}$"), handler, meta))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for a request and its path parameters; 405 when only the method is wrong."""
        path_matched = False
        for route in self._routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method != method:
                path_matched = True
                continue
            return route, found.groupdict()
        if path_matched:
            raise HttpError(405, {"message": f"The {method} method is not supported for this route."})
        return None

    @property
    def routes(self) -> list[Route]:
        """Registered routes."""
        return list(self._routes)


async def read_request(scope: Scope, receive: Receive) -> Request:
    """Build a :class:`Request` from an ASGI HTTP scope."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])}
    host = headers.get("host") or "localhost"
    scheme = scope.get("scheme", "http")
    return Request(
        method=scope["method"].upper(),
        path=scope.get("path", "/"),
        query_string=scope.get("query_string", b"").decode("latin-1"),
        headers=headers,
        body=b"".join(chunks),
        base_url=f"{scheme}://{host}{scope.get('root_path', '')}",
    )


async def send_response(send: Send, response: Response) -> None:
    """Serialise a :class:`Response` as JSON over ASGI."""
    payload = json.dumps(response.body, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    headers += [(key.lower().encode(), value.encode()) for key, value in response.headers.items()]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge ASGI lifespan messages (there is nothing to start or stop)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
