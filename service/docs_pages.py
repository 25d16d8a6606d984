"""The browser pages (GraphiQL at ``/graphql``; Swagger UI and ReDoc under ``/schema``) and the assets they load.

The JavaScript and CSS are third-party copies that ship inside the package, in ``service/static/vendor`` (pinned
versions and their licences: ``service/static/vendor/README.md``), and are served under :data:`STATIC_PATH`: the
pages work with no internet. Asset paths carry their package's version, so they are cached for a year as immutable.
Each page is sent with :data:`PAGE_SECURITY_HEADERS`, whose Content-Security-Policy lets it load scripts, styles and
data only from this server (inline ones included: the pages set themselves up inline).

Shared by both HTTP adapters (``service.api`` and ``service.gql`` may not import each other).
"""

from __future__ import annotations

import functools
from pathlib import Path
from string import Template
from typing import Any

from litestar import Response, Router
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.openapi.plugins import OpenAPIRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

STATIC_PATH = "/static"
"""Where the bundled assets are served (public: no key needed)."""

STATIC_DIR = Path(__file__).resolve().parent / "static"

_REACT = "vendor/react-18.2.0/react.production.min.js"
_REACT_DOM = "vendor/react-dom-18.2.0/react-dom.production.min.js"
_GRAPHIQL = "vendor/graphiql-3.8.3"
_EXPLORER = "vendor/graphiql-plugin-explorer-1.0.2"
_SWAGGER = "vendor/swagger-ui-dist-5.35.0"
_REDOC = "vendor/redoc-2.5.4"

PAGE_SECURITY_HEADERS = {
    "Content-Security-Policy": "; ".join([
        "default-src 'none'", "script-src 'self' 'unsafe-inline'", "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:", "font-src 'self' data:", "connect-src 'self'", "worker-src 'self' blob:",
        "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
    ]),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
"""Headers of the HTML pages: everything from this server only, no framing, no referrer."""

_ASSET_HEADERS = {"X-Content-Type-Options": "nosniff"}


async def _add_asset_headers(response: Response[Any]) -> Response[Any]:
    response.headers.update(_ASSET_HEADERS)
    return response


# No favicon request at all (Litestar's default favicon is fetched from a CDN).
_NO_FAVICON = "<link rel='icon' href='data:,'>"


def asset_url(relative: str) -> str:
    """The URL of a bundled asset, given its path under ``service/static``."""
    return f"{STATIC_PATH}/{relative}"


def static_assets_router() -> Router:
    """Serves ``service/static`` under :data:`STATIC_PATH`, cacheable for a year (paths are versioned)."""
    return create_static_files_router(
        path=STATIC_PATH, directories=[STATIC_DIR], name="static",
        cache_control=CacheControlHeader(public=True, max_age=365 * 24 * 3600, immutable=True),
        after_request=_add_asset_headers,
    )


def docs_router(path: str) -> Router:
    """The router that serves the OpenAPI document and its pages, with the pages' security headers."""
    return Router(path=path, route_handlers=[], include_in_schema=False, response_headers=[
        ResponseHeader(name=name, value=value) for name, value in PAGE_SECURITY_HEADERS.items()])


def openapi_render_plugins() -> list[OpenAPIRenderPlugin]:
    """Swagger UI (``/schema/swagger``) and ReDoc (``/schema/redoc``, also ``/schema``), from bundled assets."""
    return [
        RedocRenderPlugin(path=["/", "/redoc"], js_url=asset_url(f"{_REDOC}/redoc.standalone.js"),
                          google_fonts=False, favicon=_NO_FAVICON),
        SwaggerRenderPlugin(path="/swagger", js_url=asset_url(f"{_SWAGGER}/swagger-ui-bundle.js"),
                            css_url=asset_url(f"{_SWAGGER}/swagger-ui.css"),
                            standalone_preset_js_url=asset_url(f"{_SWAGGER}/swagger-ui-standalone-preset.js"),
                            favicon=_NO_FAVICON),
    ]


@functools.cache
def graphiql_page() -> str:
    """GraphiQL (with the query explorer) loading only bundled assets; it queries the URL it was opened at."""
    template = Template((Path(__file__).resolve().parent / "graphiql.html").read_text())
    return template.substitute(
        react=asset_url(_REACT), react_dom=asset_url(_REACT_DOM),
        graphiql_js=asset_url(f"{_GRAPHIQL}/graphiql.min.js"), graphiql_css=asset_url(f"{_GRAPHIQL}/graphiql.min.css"),
        explorer_js=asset_url(f"{_EXPLORER}/index.umd.js"), explorer_css=asset_url(f"{_EXPLORER}/style.css"),
    )
