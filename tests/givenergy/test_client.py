"""The client against canned answers (httpx.MockTransport): errors, retries, pagination, context, secrets."""

from __future__ import annotations

import json
import logging
from datetime import date

import httpx
import pytest
import structlog
from redis.asyncio import Redis

from service.givenergy import (
    ControlOutcome,
    CredentialLimiter,
    ForbiddenError,
    GivEnergyClient,
    Grant,
    Lane,
    NotFoundError,
    PaymentRequiredError,
    RateLimitedError,
    RateLimiter,
    RetryPolicy,
    UnauthorisedError,
    UnexpectedResponseError,
    UpstreamUnavailableError,
    UpstreamValidationError,
)
from tests.givenergy.conftest import TOKEN, Recorder, respond, sequence

FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.002, total_seconds=5)


def make_client(recorder: Recorder, **kwargs: object) -> GivEnergyClient:
    kwargs.setdefault("retry", FAST_RETRY)
    return GivEnergyClient(TOKEN, base_url="http://upstream.test/v1", transport=recorder.transport(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, UnauthorisedError),
        (402, PaymentRequiredError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (400, UnexpectedResponseError),
    ],
)
async def test_status_codes_map_to_the_error_tree_and_are_not_retried(status: int, error: type[Exception]) -> None:
    recorder = Recorder(sequence(respond(status, {"message": "nope"})))
    async with make_client(recorder) as client:
        with pytest.raises(error):
            await client.get_account()
    assert len(recorder.requests) == 1


async def test_validation_error_carries_the_errors_object() -> None:
    body = {"message": "The given data was invalid.", "errors": {"value": ["The value field is required."]}}
    recorder = Recorder(sequence(respond(422, body)))
    async with make_client(recorder) as client:
        with pytest.raises(UpstreamValidationError) as caught:
            await client.write_setting("CE1", 71, None)
    assert caught.value.errors == {"value": ["The value field is required."]}


@pytest.mark.parametrize("failure", [respond(500), respond(502), respond(504), httpx.ReadTimeout("slow")])
async def test_reads_are_retried_until_they_succeed(failure: httpx.Response | Exception) -> None:
    ok = respond(200, {"data": {"id": 7, "name": "acct"}})
    recorder = Recorder(sequence(failure, failure, ok))
    async with make_client(recorder) as client:
        account = await client.get_account()
    assert account.id == 7
    assert len(recorder.requests) == 3


async def test_reads_give_up_after_max_attempts() -> None:
    recorder = Recorder(sequence(respond(503)))
    async with make_client(recorder) as client:
        with pytest.raises(UpstreamUnavailableError):
            await client.get_system_data("CE1")
    assert len(recorder.requests) == FAST_RETRY.max_attempts


async def test_an_unanswered_read_says_nothing_about_writes_and_a_write_warns() -> None:
    recorder = Recorder(sequence(httpx.ConnectError("down")))
    async with make_client(recorder) as client:
        with pytest.raises(UpstreamUnavailableError) as read:
            await client.get_system_data("CE1")
        with pytest.raises(UpstreamUnavailableError) as write:
            await client.write_setting("CE1", 71, 20)
    assert "write" not in str(read.value)
    assert "connection failed: ConnectError" in str(read.value)
    assert "the write may or may not have been applied" in str(write.value)


@pytest.mark.parametrize(
    "failure",
    [respond(500), respond(504), respond(429, headers={"Retry-After": "0"}), httpx.ConnectError("down")],
)
async def test_writes_are_never_retried(failure: httpx.Response | Exception) -> None:
    recorder = Recorder(sequence(failure))
    async with make_client(recorder) as client:
        with pytest.raises((UpstreamUnavailableError, RateLimitedError)):
            await client.write_setting("CE1", 71, 20)
        with pytest.raises((UpstreamUnavailableError, RateLimitedError)):
            await client.multi_write_setting(["A", "B"], 71, 20)
    assert len(recorder.requests) == 2


async def test_429_on_a_read_is_retried_after_retry_after() -> None:
    recorder = Recorder(
        sequence(respond(429, headers={"Retry-After": "0"}), respond(200, {"data": {"status": "NORMAL"}}))
    )
    async with make_client(recorder) as client:
        data = await client.get_system_data("CE1")
    assert data.status == "NORMAL"
    assert len(recorder.requests) == 2


async def test_pagination_follows_last_page_whatever_page_size_the_server_used() -> None:
    # The server silently caps the page size at 2 and says so only through meta.
    items = [{"serial_number": f"WF{i:03d}"} for i in range(7)]

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        chunk = items[(page - 1) * 2 : page * 2]
        return respond(200, {"data": chunk, "meta": {"current_page": page, "last_page": 4, "per_page": 2}})

    recorder = Recorder(handler)
    async with make_client(recorder) as client:
        devices = [d async for d in client.iter_communication_devices(page_size=1000)]
    assert [d.serial_number for d in devices] == [i["serial_number"] for i in items]
    assert recorder.requests[0].url.params["pageSize"] == "1000"


async def test_pagination_follows_links_next_without_meta() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        nxt = f"http://upstream.test/v1/site?page={page + 1}" if page < 3 else None
        return respond(200, {"data": [{"id": page}], "links": {"next": nxt}})

    recorder = Recorder(handler)
    async with make_client(recorder) as client:
        sites = [s.id async for s in client.iter_sites()]
    assert sites == [1, 2, 3]


async def test_a_single_unpaginated_page_is_read_once() -> None:
    recorder = Recorder(sequence(respond(200, {"data": [{"uuid": "a"}, {"uuid": "b"}]})))
    async with make_client(recorder) as client:
        chargers = [c.uuid async for c in client.iter_ev_chargers()]
    assert chargers == ["a", "b"]
    assert len(recorder.requests) == 1


async def test_context_is_sent_on_every_control_call() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "multi-control" in request.url.path:
            return respond(200, {"A": {"response": 1}})
        return respond(200, {"data": {"value": 1, "success": True, "message": "ok"}})

    recorder = Recorder(handler)
    async with make_client(recorder, context="fleet") as client:
        await client.read_setting("CE1", 17)
        await client.write_setting("CE1", 17, True, context="campaign 12")
        await client.modify_preset("CE1", 0, {"enabled": True})
        await client.multi_read_setting(["A"], 17)
        await client.multi_write_setting(["A"], 17, 1)
    contexts = [body["context"] for body in recorder.bodies()]
    assert contexts == ["fleet", "campaign 12", "fleet", "fleet", "fleet"]


async def test_a_failed_write_is_a_value_not_an_exception() -> None:
    recorder = Recorder(sequence(respond(200, {"data": {"value": -7, "success": False, "message": "Inverter Locked"}})))
    async with make_client(recorder) as client:
        result = await client.write_setting("CE1", 71, 20)
    assert not result.success
    assert result.code == -7
    assert result.code_name == "LOCKED"
    assert result.outcome is ControlOutcome.FINAL


async def test_multi_control_inverter_without_an_answer_is_final_for_reads_only() -> None:
    recorder = Recorder(lambda request: respond(200, {"A": {"response": 20}}))
    async with make_client(recorder) as client:
        read = await client.multi_read_setting(["A", "B"], 71)
        written = await client.multi_write_setting(["A", "B"], 71, 20)
    assert read["A"].outcome is ControlOutcome.SUCCESS
    # No answer for B: a read changed nothing, so it is final; a write may have reached the inverter.
    assert not read["B"].success
    assert read["B"].outcome is ControlOutcome.FINAL
    assert not written["B"].success
    assert written["B"].outcome is ControlOutcome.POTENTIALLY_APPLIED
    assert written["B"].requested == 20


async def test_multi_control_answers_per_inverter_and_chunks_at_1000() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return respond(200, {s: {"response": -2 if s.endswith("7") else 20} for s in body["inverter_serials"]})

    recorder = Recorder(handler)
    serials = [f"S{i:04d}" for i in range(1500)]
    async with make_client(recorder) as client:
        results = await client.multi_write_setting(serials, 71, 20)
    assert len(recorder.requests) == 2
    assert len(results) == 1500
    assert results["S0007"].outcome is ControlOutcome.RETRY_LATER
    assert results["S0008"].outcome is ControlOutcome.SUCCESS
    assert results["S0008"].value == 20


async def test_token_never_appears_in_repr_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(sequence(respond(500, {"message": "boom"}), respond(401, {"message": "Unauthenticated."})))
    caplog.set_level(logging.DEBUG)
    client = make_client(recorder)
    assert TOKEN not in repr(client)
    # The client logs through structlog, which caplog does not see: capture its events themselves.
    with structlog.testing.capture_logs() as events, pytest.raises(UnauthorisedError) as caught:
        await client.get_account()
    await client.aclose()
    # The 500 was retried and logged: the client's own log lines are inspected, not an empty capture.
    assert [e["event"] for e in events] == ["givenergy.retry"]
    assert events[0]["endpoint"] == "GET /account"
    assert TOKEN not in repr(events)
    assert recorder.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value)
    assert TOKEN not in caplog.text
    assert "GET /account" in str(caught.value)


async def test_with_lane_shares_the_connection_pool() -> None:
    recorder = Recorder(sequence(respond(200, {"data": {"id": 1}})))
    async with make_client(recorder) as client:
        view = client.with_lane(Lane.INTERACTIVE)
        await view.aclose()  # must not close the shared pool
        assert view.lane is Lane.INTERACTIVE
        assert (await client.get_account()).id == 1


async def test_requests_are_counted_by_endpoint_template_status_and_lane() -> None:
    from prometheus_client import REGISTRY

    labels = {"endpoint": "GET /inverter/{serial}/system-data/latest", "status": "503", "lane": "monitoring"}
    before = REGISTRY.get_sample_value("givfleet_givenergy_requests_total", labels) or 0.0
    recorder = Recorder(sequence(respond(503), respond(200, {"data": {}})))
    async with make_client(recorder, lane=Lane.MONITORING) as client:
        await client.get_system_data("CE-METRICS")
    assert REGISTRY.get_sample_value("givfleet_givenergy_requests_total", labels) == before + 1


@pytest.mark.parametrize(
    ("start", "end", "cleared", "query"),
    [
        (None, None, None, []),
        (date(2024, 5, 1), None, False, [("start", "2024-05-01"), ("cleared", "0")]),
        (None, "2024-05-02T10:00:00", True, [("end", "2024-05-02T10:00:00"), ("cleared", "1")]),
    ],
)
async def test_event_filters_left_out_are_not_sent(
    start: date | None, end: str | None, cleared: bool | None, query: list[tuple[str, str]]
) -> None:
    recorder = Recorder(sequence(respond(200, {"data": [], "meta": {"last_page": 1}})))
    async with make_client(recorder) as client:
        assert [event async for event in client.iter_events("CE1", start=start, end=end, cleared=cleared)] == []
    assert recorder.requests[0].url.params.multi_items() == [*query, ("page", "1"), ("pageSize", "1000")]


async def test_get_page_reports_what_the_server_really_did() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.raw_path.split(b"?")[0] == b"/v1/account-children/a%2Fb"
        return respond(200, {"data": [{"id": 1}, {"id": 2}], "meta": {"last_page": 9, "total": 17, "per_page": 2}})

    recorder = Recorder(handler)
    async with make_client(recorder) as client:
        page = await client.get_page("/account-children/{id}", page=3, page_size=500, id="a/b")
    assert page.items == [{"id": 1}, {"id": 2}]
    assert (page.last_page, page.total, page.per_page, page.has_next) == (9, 17, 2, True)
    assert recorder.requests[0].url.params["pageSize"] == "500"


async def test_pagination_stops_when_the_server_ignores_the_page_parameter() -> None:
    same = {"data": [{"id": 1}], "links": {"next": "http://upstream.test/v1/site?page=2"}}
    recorder = Recorder(sequence(respond(200, same)))
    async with make_client(recorder) as client:
        sites = [s.id async for s in client.iter_sites()]
    assert sites == [1]
    assert len(recorder.requests) == 2


async def test_no_request_goes_out_when_the_shared_limiter_is_unreachable() -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    budget = RateLimiter(dead).credential("cred-dead")
    recorder = Recorder(sequence(respond(200, {"data": {"id": 1}})))
    async with make_client(recorder, limiter=budget) as client:
        with pytest.raises(RateLimitedError) as caught:
            await client.get_account()
    await dead.aclose()
    assert caught.value.status_code is None
    assert recorder.requests == []


async def test_a_limiter_failure_after_the_answer_does_not_fail_a_done_write(limiter: RateLimiter) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    class Flaky(CredentialLimiter):
        async def settle(self, grant: Grant, *, limit: int | None = None, remaining: int | None = None) -> None:
            raise RedisConnectionError("gone")

    base = limiter.credential("cred-flaky")
    flaky = Flaky(limiter, "cred-flaky", {"global": base.policy()})
    recorder = Recorder(sequence(respond(200, {"data": {"value": 20, "success": True}})))
    async with make_client(recorder, limiter=flaky) as client:
        result = await client.write_setting("CE1", 71, 20)
    assert result.success
    assert len(recorder.requests) == 1
