"""Abuse probe: send the documents and inputs of the hardening issue to a running server and check that none is
a server error, that the big document is refused fast, and that memory stays bounded.

Usage::

    .venv/bin/python bench/abuse.py [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
        [--redis-url redis://127.0.0.1:6379/0] [--inverters 2000]

A fresh database is created on the server, migrated, seeded (the test seed, 10 sub-contractors) and dropped at the
end. The API runs as ``givfleet api`` in a process of its own (its own uvicorn settings, a 2 s body timeout so
the stalled-body cases finish quickly). Every case is one request; a *server error* is an HTTP 5xx or a GraphQL
``INTERNAL_SERVER_ERROR``. The stalled bodies (a lying ``Content-Length``, a chunked upload that stops) are sent on
raw sockets and must be answered 408 once the body timeout passes; their wait is that timeout by design, so it
is printed on its own line and not counted in ``slowest_ms``. The server's resident memory is sampled
throughout. The last line is::

    abuse cases=N server_errors=0 slowest_ms=T max_rss_mb=M
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, where bench/graphql.py would shadow graphql-core.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import base64  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402

from bench.support import bench_database, free_port, python_tool, serve  # noqa: E402
from service.core.principal import Principal  # noqa: E402
from service.core.roles import Role  # noqa: E402
from service.tenants.service import ApiKeyService  # noqa: E402
from tests.gql.seed import inverter_serial, seed_mirror  # noqa: E402

BODY_TIMEOUT_SECONDS = 2


@dataclass
class Case:
    """One request: a name, how to send it (``json`` or raw ``content``), and the statuses that are right."""

    name: str
    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    content_type: str | None = None
    params: dict[str, Any] | None = None
    raw_url: str | None = None


def cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


def graphql(name: str, query: str, variables: dict[str, Any] | None = None) -> Case:
    # Encoded here (ASCII-escaped, so lone surrogates travel as JSON escapes), not while the clock runs.
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    return Case(name, "POST", "/graphql", content=body, content_type="application/json")


def graphql_raw(name: str, content: bytes, content_type: str = "application/json") -> Case:
    return Case(name, "POST", "/graphql", content=content, content_type=content_type)


def cases() -> list[Case]:
    """Every document and input of the issue (and their REST twins)."""
    row = str(uuid.uuid4())
    extreme = "9999-12-31T23:59:59-14:00"
    serial = inverter_serial(1)
    huge = "{ " + "viewer { role } " * 500_000 + "}"
    tokens = "{ " + "viewer { role } " * 12_000 + "}"  # ~190 KB: under the body cap, over the token limit
    return [
        graphql("7.6 MB document", huge),
        graphql("token-heavy document", tokens),
        graphql("cost via variable default", "query($n: Int = 500) { accounts(first: $n) { edges { node { "
                "username children { username children { username } } } } } }"),
        graphql("nested children without first", "{ accounts(first: 50) { edges { node { username "
                "children { username } } } } }"),
        graphql("children(first: 100000)", "{ accounts(first: 5) { edges { node { children(first: 100000) "
                "{ username } } } } }"),
        graphql("deep document", "{ " + "inverters { edges { node { account { " * 6 + "username"
                + " } } } }" * 6 + " }"),
        graphql("cursor int32 overflow (GraphQL)", "query($a: String) { inverters(sort: FIRMWARE_ARM, after: $a) "
                "{ totalCount } }", {"a": cursor("Inverter.firmware_arm.asc", 2**31, row)}),
        graphql("surrogate in variables", "query($q: String) { inverters(filter: {search: $q}) { totalCount } }",
                {"q": "\ud800"}),
        graphql("surrogate literal in document", '{ inverters(filter: {search: "\\ud800"}) { totalCount } }'),
        graphql("history(limit: -3)", f'{{ inverter(serial: "{serial}") {{ history(limit: -3) {{ kind }} }} }}'),
        graphql("first: 2147483647", "{ inverters(first: 2147483647) { totalCount } }"),
        graphql("syntax error", "{ viewer { role } "),
        graphql_raw("body null", b"null"),
        graphql_raw("body JSON string", b'"{ viewer { role } }"'),
        graphql_raw("body invalid UTF-8", b"\xff\xfe\xfd"),
        graphql_raw("body array", b"[]"),
        graphql_raw("wrong content type", b"{ viewer { role } }", "text/plain"),
        Case("cursor int32 overflow", "GET", "/api/v1/inverters",
             params={"sort": "firmware_arm", "cursor": cursor("Inverter.firmware_arm.asc", 2**31, row)}),
        Case("cursor int64 overflow (depth)", "GET", "/api/v1/accounts",
             params={"sort": "depth", "cursor": cursor("FleetAccount.depth.asc", 2**63, row)}),
        Case("cursor int64 overflow (site id)", "GET", "/api/v1/sites",
             params={"sort": "upstream_id", "cursor": cursor("Site.upstream_id.asc", 2**64, row)}),
        Case("cursor extreme date", "GET", "/api/v1/inverters",
             params={"sort": "last_online", "cursor": cursor("Inverter.last_online.asc", extreme, row)}),
        Case("malformed cursor", "GET", "/api/v1/inverters", params={"cursor": "zzz"}),
        Case("site id beyond int64", "GET", "/api/v1/sites/99999999999999999999"),
        Case("site id abc", "GET", "/api/v1/sites/abc"),
        Case("account filter beyond int64", "GET", "/api/v1/inverters", params={"account_id": 2**64}),
        Case("depth beyond int32", "GET", "/api/v1/accounts", params={"depth": 2**31}),
        Case("offline_for_hours=nan", "GET", "/api/v1/inverters", params={"offline_for_hours": "nan"}),
        Case("sort upper case", "GET", "/api/v1/inverters", params={"sort": "LAST_ONLINE"}),
        Case("search too long", "GET", "/api/v1/inverters", params={"q": "x" * 10_000}),
        Case("surrogate in query", "GET", "/", raw_url="/api/v1/inverters?q=%ED%A0%80"),
        Case("surrogate in path", "GET", "/", raw_url="/api/v1/inverters/%ED%A0%80"),
        Case("NUL in query", "GET", "/", raw_url="/api/v1/inverters?q=a%00b"),
        Case("live events extreme dates", "GET", f"/api/v1/inverters/{serial}/live/events",
             params={"start": extreme, "end": extreme}),
        Case("api key expiring at an extreme date", "POST", "/api/v1/api-keys",
             json={"name": "x", "role": "viewer", "expires_at": extreme}),
        Case("api key with account_id", "POST", "/api/v1/api-keys",
             json={"name": "x", "role": "viewer", "account_id": 999999}),
        Case("api key with a surrogate name", "POST", "/api/v1/api-keys",
             content=b'{"name": "\\ud800", "role": "viewer"}', content_type="application/json"),
        Case("empty sync request body", "POST", "/api/v1/sync-runs", content=b"",
             content_type="application/json"),
        Case("sync run id abc", "GET", "/api/v1/sync-runs/abc"),
        Case("history limit huge", "GET", f"/api/v1/inverters/{serial}/history", params={"limit": 2**40}),
    ]


class RssSampler(threading.Thread):
    """The largest resident set size of a process, sampled every 20 ms from /proc."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.max_kb, self.stopped = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    self.max_kb = max(self.max_kb, int(line.split()[1]))
            self.stopped.wait(0.02)


def is_server_error(response: httpx.Response) -> bool:
    if response.status_code >= 500:
        return True
    try:
        body = response.json()
    except ValueError:
        return False
    errors = body.get("errors") if isinstance(body, dict) else None
    return any(isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR"
               for e in errors or [])


def stalled_body(port: int, key: str, chunked: bool) -> tuple[int, float]:
    """Start a POST whose body never completes; return the status answered and the seconds it took."""
    framing = b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"que\r\n" if chunked else (
        b"Content-Length: 1000\r\n\r\n{\"query\": ")
    request = (b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               + f"Authorization: Bearer {key}\r\n".encode() + framing)
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(request)
        answer = connection.recv(65536)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, time.perf_counter() - started


async def probe(port: int, key: str) -> tuple[int, int, float]:
    """Send every case; print one line each; return (cases, server errors, slowest ms)."""
    errors, slowest = 0, 0.0
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=120) as client:
        for _ in range(3):  # warm-up (first-request costs of the process), not counted
            await client.post("/graphql", json={"query": "{ viewer { role } }"})
            await client.get("/api/v1/inverters", params={"limit": 1})
        all_cases = cases()
        for case in all_cases:
            request_headers = {"content-type": case.content_type} if case.content_type else {}
            started = time.perf_counter()
            if case.raw_url is not None:  # percent-escapes as written (httpx would re-encode them)
                request = client.build_request(case.method, case.path, headers=request_headers)
                request.url = httpx.URL(f"http://127.0.0.1:{port}{case.raw_url}")
                response = await client.send(request)
            else:
                response = await client.request(case.method, case.path, json=case.json, content=case.content,
                                                params=case.params, headers=request_headers)
            elapsed = (time.perf_counter() - started) * 1000
            slowest = max(slowest, elapsed)
            failed = is_server_error(response)
            errors += failed
            print(f"{case.name:<40} {response.status_code:>4} {elapsed:>8.1f} ms"
                  f"{'  SERVER ERROR' if failed else ''}")
    return len(all_cases), errors, slowest


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--inverters", type=int, default=2000)
    args = parser.parse_args()

    async with bench_database(args.database_url, args.redis_url, "abuse") as resources:
        async with resources.engine.begin() as connection:
            seeded = await seed_mirror(connection, args.inverters, subcontractors=10)
        async with resources.session_factory() as session, session.begin():
            key = (await ApiKeyService(session, Principal.cli(seeded.tenant_id)).create(
                name="abuse", role=Role.ADMIN)).text
        print(f"seeded {args.inverters} inverters under 10 sub-contractors")
        port = free_port()
        server = serve(resources.settings, [python_tool("givfleet"), "api", "--host", "127.0.0.1", "--port",
                                            str(port)], port,
                       {"GIVFLEET_API__BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_SECONDS)})
        try:
            sampler = RssSampler(server.pid)
            sampler.start()
            count, errors, slowest = await probe(port, key)
            for chunked in (False, True):
                status, seconds = await asyncio.to_thread(stalled_body, port, key, chunked)
                label = "stalled chunked body" if chunked else "lying Content-Length"
                errors += status >= 500 or status == 0
                count += 1
                print(f"{label:<40} {status:>4} {seconds * 1000:>8.1f} ms  (body timeout {BODY_TIMEOUT_SECONDS} s)")
            sampler.stopped.set()
            sampler.join()
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(f"abuse cases={count} server_errors={errors} slowest_ms={slowest:.0f} "
              f"max_rss_mb={sampler.max_kb / 1024:.0f}")

if __name__ == "__main__":
    asyncio.run(main())
