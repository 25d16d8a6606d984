"""The pure reconcile: upstream snapshot vs stored rows -> exactly the writes and the history a sync makes."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import timedelta
from typing import Any

from service.mirror.reconcile import Reconciliation, Stored, key_of, reconcile
from service.mirror.schemas import Entity, InverterChangeKind, SiteStatusRecord, Snapshot
from tests.mirror.factories import NOW, account, battery, dongle, inverter, meter, site


def fleet() -> Snapshot:
    """Company 1 -> engineer 2 -> customers 3 and 4; a site each; one inverter per site."""
    return Snapshot(
        accounts=[account(3, parent=2), account(1), account(4, parent=2), account(2, parent=1)],
        sites=[site(10, "user.3"), site(11, "user.4")],
        dongles=[dongle("WF1", 10, "CE1"), dongle("WF2", 11, "CE2")],
        inverters=[inverter("CE1", "WF1", 10), inverter("CE2", "WF2", 11)],
        batteries=[battery("CE1", 1), battery("CE1", 2, module_number=1), battery("CE2", 1)],
        meters=[meter("CE1", 1)],
    )


def stored_from(result: Reconciliation) -> dict[Entity, dict[Hashable, Stored[Any]]]:
    """What the mirror holds after writing ``result`` into an empty mirror."""
    return {
        entity: {key_of(entity, record): Stored(record, False, NOW) for record in diff.inserts}
        for entity, diff in result.diffs.items()
    }


def test_first_sync_inserts_everything_with_links_and_depths() -> None:
    result = reconcile(fleet(), {}, now=NOW)

    accounts = {a.upstream_id: a for a in result.diffs[Entity.ACCOUNTS].inserts}
    assert [a.upstream_id for a in result.diffs[Entity.ACCOUNTS].inserts] == [1, 2, 3, 4]  # parents first
    assert {k: (a.parent_upstream_id, a.depth) for k, a in accounts.items()} == {
        1: (None, 0),
        2: (1, 1),
        3: (2, 2),
        4: (2, 2),
    }
    assert {s.upstream_id: s.account_upstream_id for s in result.diffs[Entity.SITES].inserts} == {10: 3, 11: 4}
    assert {i.serial: (i.account_upstream_id, i.site_upstream_id) for i in result.diffs[Entity.INVERTERS].inserts} == {
        "CE1": (3, 10),
        "CE2": (4, 11),
    }
    assert {d.serial: d.account_upstream_id for d in result.diffs[Entity.DONGLES].inserts} == {"WF1": 3, "WF2": 4}
    assert len(result.diffs[Entity.BATTERIES].inserts) == 3  # two modules sharing number 1 are both kept
    assert result.changes == []


def test_second_sync_without_change_writes_nothing() -> None:
    stored = stored_from(reconcile(fleet(), {}, now=NOW))

    result = reconcile(fleet(), stored, now=NOW + timedelta(minutes=15))

    assert all(diff.empty for diff in result.diffs.values())
    assert result.changes == []


def test_status_firmware_and_account_changes_are_updates_with_history() -> None:
    stored = stored_from(reconcile(fleet(), {}, now=NOW))
    changed = fleet()
    assert changed.inverters is not None
    changed.inverters[0] = inverter("CE1", "WF1", 10, status="LOST")
    changed.inverters[1] = inverter("CE2", "WF2", 10, firmware_arm="452")  # moved to site 10 (account 3)

    result = reconcile(changed, stored, now=NOW)

    updated = {new.serial: new for _, new in result.diffs[Entity.INVERTERS].updates}
    assert set(updated) == {"CE1", "CE2"}
    assert updated["CE2"].account_upstream_id == 3
    assert sorted(result.changes) == sorted(
        [
            ("CE1", InverterChangeKind.STATUS, "NORMAL", "LOST"),
            ("CE2", InverterChangeKind.FIRMWARE_ARM, "449", "452"),
            ("CE2", InverterChangeKind.ACCOUNT, "4", "3"),
        ]
    )
    assert result.diffs[Entity.INVERTERS].inserts == []
    assert result.diffs[Entity.ACCOUNTS].empty


def test_a_device_gone_upstream_is_removed_with_its_parts_and_comes_back_restored() -> None:
    stored = stored_from(reconcile(fleet(), {}, now=NOW))
    gone = fleet()
    gone.dongles = [d for d in gone.dongles or [] if d.serial != "WF1"]
    gone.inverters = [i for i in gone.inverters or [] if i.serial != "CE1"]
    gone.batteries = [b for b in gone.batteries or [] if b.inverter_serial != "CE1"]
    gone.meters = []

    result = reconcile(gone, stored, now=NOW)

    assert result.diffs[Entity.DONGLES].removals == ["WF1"]
    assert result.diffs[Entity.INVERTERS].removals == ["CE1"]
    assert sorted(result.diffs[Entity.BATTERIES].removals) == [("CE1", 1), ("CE1", 2)]  # type: ignore[type-var]
    assert result.diffs[Entity.METERS].removals == [("CE1", 1)]
    assert result.changes == [("CE1", InverterChangeKind.REMOVED, "NORMAL", None)]

    for entity, keys in ((Entity.DONGLES, ["WF1"]), (Entity.INVERTERS, ["CE1"])):
        for key in keys:
            stored[entity][key] = stored[entity][key]._replace(removed=True)
    back = reconcile(fleet(), stored, now=NOW)
    assert [new.serial for _, new in back.diffs[Entity.INVERTERS].updates] == ["CE1"]
    assert back.changes == [("CE1", InverterChangeKind.RESTORED, None, "NORMAL")]


def test_lists_not_fetched_or_incomplete_remove_nothing() -> None:
    stored = stored_from(reconcile(fleet(), {}, now=NOW))
    refresh = fleet()
    refresh.accounts = None
    refresh.sites = None
    refresh.inverters = []
    refresh.incomplete = {Entity.INVERTERS}

    result = reconcile(refresh, stored, now=NOW)

    assert result.diffs[Entity.ACCOUNTS].empty
    assert result.diffs[Entity.SITES].empty
    assert result.diffs[Entity.INVERTERS].removals == []


def test_refresh_links_devices_through_stored_sites_and_drops_unknown_links() -> None:
    stored = stored_from(reconcile(fleet(), {}, now=NOW))
    refresh = Snapshot(
        dongles=[dongle("WF9", 11, "CE9"), dongle("WF8", 99, "CE8")],
        inverters=[inverter("CE9", "WF9", 11), inverter("CE8", "WF8", 99)],
        batteries=[],
        meters=[],
    )

    result = reconcile(refresh, stored, now=NOW)

    links = {i.serial: (i.account_upstream_id, i.site_upstream_id) for i in result.diffs[Entity.INVERTERS].inserts}
    assert links == {"CE9": (4, 11), "CE8": (None, None)}


def test_last_seen_is_refreshed_only_after_the_granularity() -> None:
    stored = stored_from(reconcile(fleet(), {}, now=NOW))

    soon = reconcile(fleet(), stored, now=NOW + timedelta(hours=1), seen_granularity=timedelta(hours=6))
    later = reconcile(fleet(), stored, now=NOW + timedelta(hours=7), seen_granularity=timedelta(hours=6))

    assert soon.diffs[Entity.INVERTERS].seen == []
    assert sorted(later.diffs[Entity.INVERTERS].seen) == ["CE1", "CE2"]  # type: ignore[type-var]
    assert later.diffs[Entity.INVERTERS].updates == []


def test_site_statuses_fetched_are_passed_to_the_write() -> None:
    # Which of them changed is the write's question (the UPDATE compares, tests/mirror/test_sync.py).
    statuses = [SiteStatusRecord(10, "vacant"), SiteStatusRecord(11, None), SiteStatusRecord(12, None)]

    assert reconcile(Snapshot(), {}, now=NOW, site_statuses=statuses).site_statuses == statuses
    assert reconcile(Snapshot(), {}, now=NOW).site_statuses == []
