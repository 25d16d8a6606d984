"""The browser pages (GraphiQL, Swagger UI, ReDoc) load only assets this server ships: they work offline."""

from __future__ import annotations

from html.parser import HTMLParser

import httpx
import pytest

from service.docs_pages import STATIC_DIR

PAGES = {"/graphql": 4, "/schema": 1, "/schema/redoc": 1, "/schema/swagger": 3}
"""Each page, and how many scripts and stylesheets it loads at least."""

CONTENT_TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",)}


class _Loads(HTMLParser):
    """The URLs a page makes the browser fetch: script sources and linked resources (stylesheets, icons)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src", "iframe": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value is not None:
                self.urls.append(value)


def loads_of(page: str) -> list[str]:
    parser = _Loads()
    parser.feed(page)
    return parser.urls


def is_local(url: str) -> bool:
    return url.startswith("data:") or (url.startswith("/") and not url.startswith("//"))


@pytest.mark.parametrize(("path", "at_least"), PAGES.items())
async def test_docs_page_loads_only_local_assets_and_each_is_served(api_client: httpx.AsyncClient, path: str,
                                                                    at_least: int) -> None:
    page = await api_client.get(path, headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self' 'unsafe-inline'" in csp
    assert "connect-src 'self'" in csp
    urls = loads_of(page.text)
    assert [url for url in urls if not is_local(url)] == []
    assets = [url for url in urls if url.startswith("/static/")]
    assert len(assets) >= at_least, urls
    for url in assets:
        asset = await api_client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rindex("."):]
        assert asset.headers["content-type"].split(";")[0] in CONTENT_TYPES[suffix], url
        assert "immutable" in asset.headers["cache-control"]
        assert asset.headers["x-content-type-options"] == "nosniff"
        assert asset.content == (STATIC_DIR / url.removeprefix("/static/")).read_bytes(), url


async def test_static_route_serves_nothing_outside_its_folder(api_client: httpx.AsyncClient) -> None:
    for path in ("/static/../docs_pages.py", "/static/%2e%2e/settings.py", "/static/nothing-here.js"):
        response = await api_client.get(path)
        assert response.status_code == 404, path
