"""mirror: accounts, sites, dongles, inverters, battery modules, meters, inverter history, sync runs and schedules

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 05:27:28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mirror_accounts",
        sa.Column("upstream_id", sa.BigInteger(), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("surname", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=50), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("address", sa.String(length=500), nullable=True),
        sa.Column("postcode", sa.String(length=20), nullable=True),
        sa.Column("country", sa.String(length=100), nullable=True),
        sa.Column("telephone_number", sa.String(length=50), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("standard_timezone", sa.String(length=64), nullable=True),
        sa.Column("parent_upstream_id", sa.BigInteger(), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "parent_upstream_id"],
            ["mirror_accounts.tenant_id", "mirror_accounts.upstream_id"],
            name="fk_mirror_accounts_parent",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_mirror_accounts_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mirror_accounts")),
        sa.UniqueConstraint("tenant_id", "upstream_id", name=op.f("uq_mirror_accounts_tenant_id_upstream_id")),
    )
    op.create_index(
        "ix_mirror_accounts_tenant_id_parent_upstream_id",
        "mirror_accounts",
        ["tenant_id", "parent_upstream_id"],
        unique=False,
    )
    op.create_index("ix_mirror_accounts_tenant_id_username", "mirror_accounts", ["tenant_id", "username"], unique=False)
    op.create_table(
        "mirror_sync_schedules",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("full_interval_seconds", sa.Integer(), nullable=False),
        sa.Column("refresh_interval_seconds", sa.Integer(), nullable=False),
        sa.Column("next_full_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_refresh_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_mirror_sync_schedules_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mirror_sync_schedules")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_mirror_sync_schedules_tenant_id")),
    )
    op.create_table(
        "mirror_sites",
        sa.Column("upstream_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("account_username", sa.String(length=200), nullable=True),
        sa.Column("account_upstream_id", sa.BigInteger(), nullable=True),
        sa.Column("date_created", sa.Date(), nullable=True),
        sa.Column("country", sa.String(length=100), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("tz_timezone", sa.String(length=64), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("type", sa.String(length=50), nullable=True),
        sa.Column("products", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("scheme_status", sa.String(length=50), nullable=True),
        sa.Column("scheme_status_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "account_upstream_id"],
            ["mirror_accounts.tenant_id", "mirror_accounts.upstream_id"],
            name="fk_mirror_sites_account",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_mirror_sites_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mirror_sites")),
        sa.UniqueConstraint("tenant_id", "upstream_id", name=op.f("uq_mirror_sites_tenant_id_upstream_id")),
    )
    op.create_index(
        "ix_mirror_sites_tenant_id_account_upstream_id",
        "mirror_sites",
        ["tenant_id", "account_upstream_id"],
        unique=False,
    )
    op.create_table(
        "mirror_sync_runs",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("credential_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.Enum("full", "refresh", name="sync_kind"), nullable=False),
        sa.Column("state", sa.Enum("running", "succeeded", "failed", name="sync_state"), nullable=False),
        sa.Column("job_id", sa.String(length=200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("planned_requests", sa.Integer(), nullable=True),
        sa.Column("planned_eta_seconds", sa.Float(), nullable=True),
        sa.Column("requests_used", sa.Integer(), nullable=False),
        sa.Column("rate_limited", sa.Integer(), nullable=False),
        sa.Column("server_errors", sa.Integer(), nullable=False),
        sa.Column("rows_inserted", sa.Integer(), nullable=False),
        sa.Column("rows_updated", sa.Integer(), nullable=False),
        sa.Column("rows_removed", sa.Integer(), nullable=False),
        sa.Column("history_rows", sa.Integer(), nullable=False),
        sa.Column("site_status_included", sa.Boolean(), nullable=False),
        sa.Column("progress", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["upstream_credentials.id"],
            name=op.f("fk_mirror_sync_runs_credential_id_upstream_credentials"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_mirror_sync_runs_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mirror_sync_runs")),
    )
    op.create_index(
        "ix_mirror_sync_runs_one_running",
        "mirror_sync_runs",
        ["tenant_id"],
        unique=True,
        postgresql_where=sa.text("state = 'running'"),
    )
    op.create_index(
        "ix_mirror_sync_runs_tenant_id_started_at", "mirror_sync_runs", ["tenant_id", "started_at"], unique=False
    )
    op.create_table(
        "mirror_dongles",
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=True),
        sa.Column("firmware_version", sa.String(length=64), nullable=True),
        sa.Column("commission_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("account_upstream_id", sa.BigInteger(), nullable=True),
        sa.Column("site_upstream_id", sa.BigInteger(), nullable=True),
        sa.Column("inverter_serial", sa.String(length=64), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "account_upstream_id"],
            ["mirror_accounts.tenant_id", "mirror_accounts.upstream_id"],
            name="fk_mirror_dongles_account",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "site_upstream_id"],
            ["mirror_sites.tenant_id", "mirror_sites.upstream_id"],
            name="fk_mirror_dongles_site",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_mirror_dongles_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mirror_dongles")),
        sa.UniqueConstraint("tenant_id", "serial", name=op.f("uq_mirror_dongles_tenant_id_serial")),
    )
    op.create_table(
        "mirror_inverters",
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("dongle_serial", sa.String(length=64), nullable=True),
        sa.Column("account_upstream_id", sa.BigInteger(), nullable=True),
        sa.Column("site_upstream_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column("status_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_online", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=True),
        sa.Column("commission_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("model", sa.String(length=64), nullable=True),
        sa.Column("battery_type", sa.String(length=32), nullable=True),
        sa.Column("battery_nominal_capacity", sa.Float(), nullable=True),
        sa.Column("battery_nominal_voltage", sa.Float(), nullable=True),
        sa.Column("battery_depth_of_discharge", sa.Float(), nullable=True),
        sa.Column("max_charge_rate", sa.Float(), nullable=True),
        sa.Column("max_discharge_rate", sa.Float(), nullable=True),
        sa.Column("warranty_type", sa.String(length=64), nullable=True),
        sa.Column("warranty_expiry", sa.DateTime(timezone=True), nullable=True),
        sa.Column("firmware_arm", sa.String(length=32), nullable=True),
        sa.Column("firmware_dsp", sa.String(length=32), nullable=True),
        sa.Column("flags", postgresql.ARRAY(sa.String(length=100)), nullable=False),
        sa.Column("is_controllable", sa.Boolean(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "account_upstream_id"],
            ["mirror_accounts.tenant_id", "mirror_accounts.upstream_id"],
            name="fk_mirror_inverters_account",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "dongle_serial"],
            ["mirror_dongles.tenant_id", "mirror_dongles.serial"],
            name="fk_mirror_inverters_dongle",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "site_upstream_id"],
            ["mirror_sites.tenant_id", "mirror_sites.upstream_id"],
            name="fk_mirror_inverters_site",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_mirror_inverters_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mirror_inverters")),
        sa.UniqueConstraint("tenant_id", "serial", name=op.f("uq_mirror_inverters_tenant_id_serial")),
    )
    op.create_index(
        "ix_mirror_inverters_tenant_id_account_upstream_id",
        "mirror_inverters",
        ["tenant_id", "account_upstream_id"],
        unique=False,
    )
    op.create_index(
        "ix_mirror_inverters_tenant_id_firmware_arm", "mirror_inverters", ["tenant_id", "firmware_arm"], unique=False
    )
    op.create_index(
        "ix_mirror_inverters_tenant_id_site_upstream_id",
        "mirror_inverters",
        ["tenant_id", "site_upstream_id"],
        unique=False,
    )
    op.create_index("ix_mirror_inverters_tenant_id_status", "mirror_inverters", ["tenant_id", "status"], unique=False)
    op.create_table(
        "mirror_battery_modules",
        sa.Column("inverter_serial", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("module_number", sa.Integer(), nullable=True),
        sa.Column("serial", sa.String(length=64), nullable=True),
        sa.Column("firmware_version", sa.String(length=32), nullable=True),
        sa.Column("capacity_full", sa.Float(), nullable=True),
        sa.Column("capacity_design", sa.Float(), nullable=True),
        sa.Column("cell_count", sa.Integer(), nullable=True),
        sa.Column("has_usb", sa.Boolean(), nullable=True),
        sa.Column("nominal_voltage", sa.Float(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "inverter_serial"],
            ["mirror_inverters.tenant_id", "mirror_inverters.serial"],
            name="fk_mirror_battery_modules_inverter",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_mirror_battery_modules_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mirror_battery_modules")),
        sa.UniqueConstraint(
            "tenant_id",
            "inverter_serial",
            "position",
            name=op.f("uq_mirror_battery_modules_tenant_id_inverter_serial_position"),
        ),
    )
    op.create_table(
        "mirror_inverter_changes",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("inverter_serial", sa.String(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "status", "firmware_arm", "firmware_dsp", "account", "removed", "restored", name="inverter_change_kind"
            ),
            nullable=False,
        ),
        sa.Column("from_value", sa.String(length=64), nullable=True),
        sa.Column("to_value", sa.String(length=64), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sync_run_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sync_run_id"],
            ["mirror_sync_runs.id"],
            name=op.f("fk_mirror_inverter_changes_sync_run_id_mirror_sync_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "inverter_serial"],
            ["mirror_inverters.tenant_id", "mirror_inverters.serial"],
            name="fk_mirror_inverter_changes_inverter",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_mirror_inverter_changes_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mirror_inverter_changes")),
    )
    op.create_index(
        "ix_mirror_inverter_changes_inverter",
        "mirror_inverter_changes",
        ["tenant_id", "inverter_serial", "observed_at"],
        unique=False,
    )
    op.create_index(
        "ix_mirror_inverter_changes_kind", "mirror_inverter_changes", ["tenant_id", "kind", "to_value"], unique=False
    )
    op.create_table(
        "mirror_meters",
        sa.Column("inverter_serial", sa.String(length=64), nullable=False),
        sa.Column("address", sa.Integer(), nullable=False),
        sa.Column("serial_number", sa.String(length=64), nullable=True),
        sa.Column("manufacturer_code", sa.String(length=32), nullable=True),
        sa.Column("type_code", sa.Integer(), nullable=True),
        sa.Column("hardware_version", sa.Integer(), nullable=True),
        sa.Column("software_version", sa.Integer(), nullable=True),
        sa.Column("baud_rate", sa.Integer(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "inverter_serial"],
            ["mirror_inverters.tenant_id", "mirror_inverters.serial"],
            name="fk_mirror_meters_inverter",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_mirror_meters_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mirror_meters")),
        sa.UniqueConstraint(
            "tenant_id", "inverter_serial", "address", name=op.f("uq_mirror_meters_tenant_id_inverter_serial_address")
        ),
    )


def downgrade() -> None:
    op.drop_table("mirror_meters")
    op.drop_index("ix_mirror_inverter_changes_kind", table_name="mirror_inverter_changes")
    op.drop_index("ix_mirror_inverter_changes_inverter", table_name="mirror_inverter_changes")
    op.drop_table("mirror_inverter_changes")
    op.drop_table("mirror_battery_modules")
    op.drop_index("ix_mirror_inverters_tenant_id_status", table_name="mirror_inverters")
    op.drop_index("ix_mirror_inverters_tenant_id_site_upstream_id", table_name="mirror_inverters")
    op.drop_index("ix_mirror_inverters_tenant_id_firmware_arm", table_name="mirror_inverters")
    op.drop_index("ix_mirror_inverters_tenant_id_account_upstream_id", table_name="mirror_inverters")
    op.drop_table("mirror_inverters")
    op.drop_table("mirror_dongles")
    op.drop_index("ix_mirror_sync_runs_tenant_id_started_at", table_name="mirror_sync_runs")
    op.drop_index(
        "ix_mirror_sync_runs_one_running", table_name="mirror_sync_runs", postgresql_where=sa.text("state = 'running'")
    )
    op.drop_table("mirror_sync_runs")
    op.drop_index("ix_mirror_sites_tenant_id_account_upstream_id", table_name="mirror_sites")
    op.drop_table("mirror_sites")
    op.drop_table("mirror_sync_schedules")
    op.drop_index("ix_mirror_accounts_tenant_id_username", table_name="mirror_accounts")
    op.drop_index("ix_mirror_accounts_tenant_id_parent_upstream_id", table_name="mirror_accounts")
    op.drop_table("mirror_accounts")
    for name in ("inverter_change_kind", "sync_state", "sync_kind"):
        sa.Enum(name=name).drop(op.get_bind(), checkfirst=True)
