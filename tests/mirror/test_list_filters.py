"""The account, site and dongle list filters: what every list shares (scope, removed rows, text search) and the
criteria each adds, in that order."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement
from sqlalchemy.dialects import postgresql

from service.core.tenancy import TenantId
from service.mirror.queries import AccountFilter, DongleFilter, ReadScope, SiteFilter

SCOPE = ReadScope(TenantId(uuid.UUID(int=1)))


def rendered(conditions: list[ColumnElement[bool]]) -> list[str]:
    return [str(condition.compile(dialect=postgresql.dialect())) for condition in conditions]


def test_defaults_list_the_tenants_present_rows_only() -> None:
    for criteria, table in ((AccountFilter(), "mirror_accounts"), (SiteFilter(), "mirror_sites"),
                            (DongleFilter(), "mirror_dongles")):
        assert rendered(criteria.conditions(SCOPE)) == [
            f"{table}.tenant_id = %(tenant_id_1)s::UUID", f"{table}.removed_at IS NULL"]


def test_removed_none_lists_present_and_removed_rows() -> None:
    assert rendered(SiteFilter(removed=None).conditions(SCOPE)) == ["mirror_sites.tenant_id = %(tenant_id_1)s::UUID"]


def test_own_criteria_come_before_the_search_over_the_filters_columns() -> None:
    conditions = rendered(DongleFilter(site_id=7, search="WF", removed=True).conditions(SCOPE))

    assert conditions[1:] == [
        "mirror_dongles.removed_at IS NOT NULL",
        "mirror_dongles.site_upstream_id = %(site_upstream_id_1)s::BIGINT",
        "mirror_dongles.serial ILIKE %(serial_1)s::VARCHAR OR mirror_dongles.inverter_serial ILIKE "
        "%(inverter_serial_1)s::VARCHAR",
    ]


def test_account_search_matches_every_name_column() -> None:
    search = rendered(AccountFilter(depth=2, search="smith").conditions(SCOPE))[-1]

    for column in ("username", "postcode", "first_name", "surname", "email"):
        assert f"mirror_accounts.{column} ILIKE" in search


def test_a_search_no_row_can_hold_matches_nothing() -> None:
    assert rendered(SiteFilter(search="a\x00b").conditions(SCOPE))[-1] == "false"
