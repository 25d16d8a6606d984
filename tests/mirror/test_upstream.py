"""Normalising what the real service sends, and noticing a list that shifted while it was paged."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import httpx
import pytest
from pydantic import SecretStr

from service.mirror.upstream import Fetcher, RequestTap, UpstreamSession, device_records, site_record
from service.upstream import UpstreamTarget

ODD_DEVICE = {
    "serial_number": "WF0001",
    "type": "WIFI",
    "firmware_version": 312,
    "commission_date": "2021-01-01 10:00:00",  # no offset: taken as UTC
    "inverter": {
        "serial": "CE0001",
        "status": "OFF_GRID",  # newer than the docs: kept as data
        "last_online": None,
        "last_updated": "not a date",
        "info": {"battery": None, "model": "GIV-HY5.0", "max_charge_rate": "3600"},
        "warranty": [],
        "firmware_version": {"ARM": 449, "DSP": "450"},
        "connections": {
            "batteries": {"0": {"module_number": "1", "serial": "BB1", "capacity": {"full": 180.5, "design": None}}},
            "meters": None,
            "datalog": {"serial_number": "WF0001", "site_id": "77"},
        },
        "flags": ["is-controllable", None, "full-power-discharge-in-eco-mode", "is-controllable"],
    },
}


def test_odd_payloads_become_records_without_failing_or_inventing_values() -> None:
    records = device_records(ODD_DEVICE)

    assert records is not None
    assert records.dongle.site_upstream_id == 77  # from connections.datalog
    assert records.dongle.firmware_version == "312"
    assert records.dongle.commission_date == datetime(2021, 1, 1, 10, tzinfo=UTC)
    inverter = records.inverter
    assert inverter is not None
    assert inverter.status == "OFF_GRID"
    assert inverter.last_online is None
    assert inverter.last_updated is None
    assert inverter.battery_nominal_capacity is None  # a null is never a 0
    assert inverter.max_charge_rate == 3600.0
    assert (inverter.firmware_arm, inverter.firmware_dsp) == ("449", "450")
    assert inverter.flags == ("full-power-discharge-in-eco-mode", "is-controllable")
    assert inverter.is_controllable is True
    assert [(b.position, b.module_number, b.capacity_full, b.capacity_design) for b in records.batteries] == [
        (1, 1, 180.5, None)
    ]
    assert records.meters == []
    assert device_records({"inverter": None}) is None  # no serial anywhere: skipped


@pytest.mark.parametrize(("flags", "controllable"), [
    ({"flags": ["is-controllable"]}, True),
    ({"flags": []}, False),  # the docs: a flag missing from the list does not apply
    ({"flags": None}, None),  # the cloud says nothing
    ({}, None),
])
def test_an_empty_flag_list_is_not_controllable_and_no_list_is_unknown(flags: dict[str, object],
                                                                       controllable: bool | None) -> None:
    records = device_records({"serial_number": "WF1", "inverter": {"serial": "CE1", **flags}})

    assert records is not None
    assert records.inverter is not None
    assert records.inverter.is_controllable is controllable


def test_site_dates_and_missing_ids() -> None:
    record = site_record({"id": 9, "date_created": "1988-02-09", "latitude": "52.1", "products": {"0": "x"}})

    assert record is not None
    assert record.date_created == date(1988, 2, 9)
    assert record.latitude == 52.1
    assert record.products == ("x",)
    assert site_record({"name": "no id"}) is None


async def test_a_list_whose_total_changes_while_paged_is_marked_unsteady() -> None:
    totals = {1: 3, 2: 4}  # an item was added between page 1 and page 2

    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        items = [{"serial_number": f"WF{page}{n}"} for n in range(2)]
        body = {"data": items, "meta": {"current_page": page, "last_page": 2, "total": totals[page]}, "links": {}}
        return httpx.Response(200, content=json.dumps(body), headers={"content-type": "application/json"})

    target = UpstreamTarget(SecretStr("t"), "http://mock/v1", transport=httpx.MockTransport(answer))
    async with UpstreamSession(target, RequestTap()) as session:
        fetcher = Fetcher(session, page_size=2, concurrency=2)
        items, steady = await fetcher.finish_list(
            await fetcher.start_list("/communication-device")
        )

    assert len(items) == 4
    assert steady is False
