"""Headless-browser check of the docs pages, offline: GraphiQL runs a query; Swagger UI and ReDoc render.

Usage::

    python bench/ui_check.py --screenshots DIR [--chromium /usr/bin/chromium]

Starts ``givfleet up`` on a fresh home (embedded PostgreSQL and Redis, the bundled simulator) and takes the demo
admin key from its banner. Then drives Debian's Chromium through Playwright (the Python package, with
``executable_path``: no browser download) with an empty profile and no network but 127.0.0.1: every other
request is refused twice over, by the browser's host resolver and by a request filter that records it. It opens
GraphiQL, types a query and the key into the headers pane, runs it and reads the result pane; opens Swagger UI and
ReDoc and checks that they rendered the API. Fails if any page asked for anything off this machine, hit a
Content-Security-Policy refusal or logged an error. Saves one PNG per page in DIR and ends ``up`` with SIGINT.

Needs ``pip install playwright`` (the Python package only; never ``playwright install``) and ``/usr/bin/chromium``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Request, Response, Route, expect, sync_playwright

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Offline at the resolver too: every host name but the loopback address fails to resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
QUERY = "{ viewer { role } fleetSummary { total } }"
READY_LINE = "Press Ctrl-C to stop."


KNOWN_OUTSIDE = {
    # ReDoc's sidebar credit ("API docs by Redocly") shows a logo from its CDN; the pages' CSP refuses it and
    # ReDoc drops the image when it cannot load (the bundle is kept unmodified).
    "https://cdn.redoc.ly/redoc/logo-mini.svg",
}
"""Addresses off this machine that a page is known to ask for, and that it does without."""


@dataclass
class Traffic:
    """What the pages asked for, and what went wrong in them."""

    local: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    key_entered: bool = False
    """Before the key is in GraphiQL's headers pane, its schema request is refused (401): expected."""

    def route(self, route: Route, request: Request) -> None:
        if re.match(r"^https?://127\.0\.0\.1(:\d+)?/", request.url) or request.url.startswith("data:"):
            self.local.append(request.url)
            route.continue_()
        else:
            self.refused.append(request.url)
            route.abort("internetdisconnected")

    def response(self, response: Response) -> None:
        if response.status >= 400 and not (response.status == 401 and not self.key_entered):
            self.errors.append(f"HTTP {response.status} from {response.request.method} {response.url}")

    def console(self, message: ConsoleMessage) -> None:
        text = message.text
        if message.type != "error" or text.startswith("Failed to load resource"):  # seen by response()
            return
        if "Content Security Policy" in text and any(f"'{url}'" in text for url in KNOWN_OUTSIDE):
            return
        self.errors.append(text)

    def outside(self) -> list[str]:
        return [url for url in self.refused if url not in KNOWN_OUTSIDE]


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def givfleet_up(work: Path) -> Iterator[tuple[str, str]]:
    """``givfleet up`` on a fresh home in ``work``; yields its base URL and the demo admin key; SIGINT at the end."""
    port = unused_port()
    env = {**os.environ, "GIVFLEET_HOME": str(work / "home"), "GIVFLEET_API__PORT": str(port),
           "GIVFLEET_SIMULATOR__PORT": str(unused_port())}
    for name in ("GIVFLEET_DATABASE_URL", "GIVFLEET_REDIS_URL"):
        env.pop(name, None)
    log_path = work / "up.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(["givfleet", "up"], cwd=work, env=env, stdout=log,  # noqa: S607
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while READY_LINE not in log_path.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"ui_check: givfleet up did not get ready:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        key = re.search(r"gvf_[A-Za-z0-9_-]+", log_path.read_text())
        if key is None:
            raise SystemExit("ui_check: no demo admin key in up's banner")
        yield f"http://127.0.0.1:{port}", key.group(0)
    finally:
        process.send_signal(signal.SIGINT)
        if process.wait(timeout=60) != 0:
            raise SystemExit(f"ui_check: givfleet up exited {process.returncode} on SIGINT")


def replace_text(page: Page, editor_selector: str, text: str) -> None:
    """Click into a GraphiQL editor, select everything and type ``text`` over it (as pasted)."""
    page.locator(f"{editor_selector} .CodeMirror").filter(visible=True).first.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)


def check_graphiql(page: Page, api: str, key: str, shots: Path, traffic: Traffic) -> str:
    page.goto(f"{api}/graphql")
    expect(page.locator(".graphiql-query-editor .CodeMirror")).to_be_visible(timeout=30_000)
    replace_text(page, ".graphiql-query-editor", QUERY)
    page.get_by_role("button", name="Headers").click()
    replace_text(page, ".graphiql-editor-tool", json.dumps({"Authorization": f"Bearer {key}"}))
    traffic.key_entered = True
    page.locator(".graphiql-execute-button").click()
    result = page.locator(".result-window")
    expect(result).to_contain_text('"total"', timeout=30_000)
    text = result.inner_text()
    total = re.search(r'"total":\s*(\d+)', text)
    if '"role": "admin"' not in text or total is None or int(total.group(1)) == 0:
        raise SystemExit(f"ui_check: GraphiQL's result pane shows no fleet:\n{text}")
    page.screenshot(path=shots / "graphiql.png")
    return f"GraphiQL ran the query ({total.group(1)} inverters)"


def count_rendered(page: Page, url: str, title: str, items: str, shot: Path) -> int:
    """Open a docs page, wait until its title names givfleet and its first item shows, save a screenshot, and
    count the items (``title`` and ``items``: CSS selectors)."""
    page.goto(url)
    expect(page.locator(title)).to_contain_text("givfleet", timeout=30_000)
    listed = page.locator(items)
    expect(listed.first).to_be_visible()
    page.screenshot(path=shot)
    return listed.count()


def check_swagger(page: Page, api: str, shots: Path) -> str:
    operations = count_rendered(page, f"{api}/schema/swagger", ".swagger-ui .info .title", ".swagger-ui .opblock",
                                shots / "swagger.png")
    return f"Swagger UI shows {operations} operations"


def check_redoc(page: Page, api: str, shots: Path) -> str:
    entries = count_rendered(page, f"{api}/schema/redoc", ".api-info h1", ".menu-content [role=menuitem]",
                             shots / "redoc.png")
    return f"ReDoc lists {entries} entries"


def run(chromium: str, shots: Path) -> None:
    shots.mkdir(parents=True, exist_ok=True)
    traffic = Traffic()
    with tempfile.TemporaryDirectory(prefix="givfleet-ui-") as scratch, givfleet_up(Path(scratch)) as (api, key):
        profile = Path(scratch) / "profile"
        profile.mkdir()
        with sync_playwright() as playwright:
            context: BrowserContext = playwright.chromium.launch_persistent_context(
                str(profile), executable_path=chromium, args=CHROMIUM_FLAGS, headless=True,
                viewport={"width": 1400, "height": 900})
            try:
                context.route("**/*", traffic.route)
                page = context.pages[0] if context.pages else context.new_page()
                page.on("console", traffic.console)
                page.on("response", traffic.response)
                try:
                    findings = [check_graphiql(page, api, key, shots, traffic), check_swagger(page, api, shots),
                                check_redoc(page, api, shots)]
                except Exception:
                    page.screenshot(path=shots / "failed.png")  # what the page showed when a check failed
                    raise
            finally:
                context.close()
    if traffic.outside():
        raise SystemExit("ui_check: the pages asked for addresses off this machine:\n" + "\n".join(traffic.outside()))
    if traffic.errors:
        raise SystemExit("ui_check: errors in the pages' consoles:\n" + "\n".join(traffic.errors))
    print(f"ui_check: passed offline ({len(traffic.local)} requests to 127.0.0.1, {len(traffic.refused)} refused, "
          "none needed): "
          + "; ".join(findings) + f"; screenshots in {shots}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshots", type=Path, required=True, help="folder for the PNG screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium binary to drive")
    arguments = parser.parse_args()
    run(arguments.chromium, arguments.screenshots)


if __name__ == "__main__":
    main()
