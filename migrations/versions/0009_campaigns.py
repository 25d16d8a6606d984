"""campaigns: campaigns, their targets and chunks, the learnt setting catalogue, the tenant's approval threshold

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-01 04:19:51
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.Enum("write", "read", "restart", name="campaign_kind"), nullable=False),
        sa.Column("setting_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "draft",
                "planned",
                "approved",
                "running",
                "paused",
                "completed",
                "aborted",
                "cancelled",
                "rolling_back",
                "rolled_back",
                name="campaign_state",
            ),
            nullable=False,
        ),
        sa.Column("restricted_account_id", sa.BigInteger(), nullable=True),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("site_ids", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.Column("models", postgresql.ARRAY(sa.String(length=64)), nullable=True),
        sa.Column("statuses", postgresql.ARRAY(sa.String(length=32)), nullable=True),
        sa.Column("firmware_arm_min", sa.Integer(), nullable=True),
        sa.Column("firmware_arm_max", sa.Integer(), nullable=True),
        sa.Column("firmware_dsp_min", sa.Integer(), nullable=True),
        sa.Column("firmware_dsp_max", sa.Integer(), nullable=True),
        sa.Column("serials", postgresql.ARRAY(sa.String(length=64)), nullable=True),
        sa.Column("excluded_serials", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("canary_size", sa.Integer(), nullable=False),
        sa.Column("growth_factor", sa.Float(), nullable=False),
        sa.Column("max_wave_size", sa.Integer(), nullable=False),
        sa.Column("wave_pause_seconds", sa.Integer(), nullable=False),
        sa.Column("abort_failure_rate", sa.Float(), nullable=False),
        sa.Column("abort_failure_count", sa.Integer(), nullable=True),
        sa.Column("window_start", sa.Time(), nullable=True),
        sa.Column("window_end", sa.Time(), nullable=True),
        sa.Column("window_weekdays", postgresql.ARRAY(sa.SmallInteger()), nullable=True),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("retry_after_seconds", sa.Integer(), nullable=False),
        sa.Column("verify", sa.Boolean(), nullable=False),
        sa.Column("skip_if_set", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("approved_by", sa.String(length=100), nullable=True),
        sa.Column("approved_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state_reason", sa.String(length=300), nullable=True),
        sa.Column("target_count", sa.Integer(), nullable=False),
        sa.Column("current_wave", sa.Integer(), nullable=False),
        sa.Column("wave_count", sa.Integer(), nullable=False),
        sa.Column("tick_seq", sa.Integer(), nullable=False),
        sa.Column("next_step_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requests_used", sa.Integer(), nullable=False),
        sa.Column("rewrites", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_campaigns_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index("ix_campaigns_tenant_id_state", "campaigns", ["tenant_id", "state"], unique=False)
    op.create_table(
        "setting_catalogues",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("firmware_arm", sa.String(length=32), nullable=False),
        sa.Column("source_serial", sa.String(length=64), nullable=False),
        sa.Column("learned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_setting_catalogues_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_setting_catalogues")),
        sa.UniqueConstraint(
            "tenant_id", "model", "firmware_arm", name=op.f("uq_setting_catalogues_tenant_id_model_firmware_arm")
        ),
    )
    op.create_table(
        "campaign_chunks",
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "read",
                "write",
                "verify",
                "rollback_read",
                "rollback_write",
                "rollback_verify",
                name="campaign_chunk_kind",
            ),
            nullable=False,
        ),
        sa.Column(
            "state", sa.Enum("pending", "sending", "done", "cancelled", name="campaign_chunk_state"), nullable=False
        ),
        sa.Column("serials", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_chunks_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_campaign_chunks_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_chunks")),
    )
    op.create_index("ix_campaign_chunks_campaign_id_state", "campaign_chunks", ["campaign_id", "state"], unique=False)
    op.create_table(
        "campaign_targets",
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=True),
        sa.Column("firmware_arm", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "ready",
                "retrying",
                "writing",
                "written",
                "unverified",
                "applied",
                "applied_modified",
                "not_applied",
                "failed",
                "skipped",
                "excluded",
                "recorded",
                "rollback_pending",
                "rollback_ready",
                "rollback_writing",
                "rollback_written",
                "rolled_back",
                "rollback_failed",
                "changed_since",
                name="campaign_target_state",
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("wave", sa.Integer(), nullable=True),
        sa.Column("chunk_id", sa.Uuid(), nullable=True),
        sa.Column("previous_value", sa.String(length=64), nullable=True),
        sa.Column("written_value", sa.String(length=64), nullable=True),
        sa.Column("value_read", sa.String(length=64), nullable=True),
        sa.Column("code", sa.SmallInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("writes", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_targets_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_campaign_targets_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_targets")),
        sa.UniqueConstraint("campaign_id", "serial", name=op.f("uq_campaign_targets_campaign_id_serial")),
    )
    op.create_index("ix_campaign_targets_campaign_id_state", "campaign_targets", ["campaign_id", "state"], unique=False)
    op.create_index("ix_campaign_targets_chunk_id", "campaign_targets", ["chunk_id"], unique=False)
    op.create_index("ix_campaign_targets_tenant_id_serial", "campaign_targets", ["tenant_id", "serial"], unique=False)
    op.create_table(
        "catalogue_settings",
        sa.Column("catalogue_id", sa.Uuid(), nullable=False),
        sa.Column("setting_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("validation", sa.String(length=300), nullable=True),
        sa.Column("rules", postgresql.ARRAY(sa.String(length=100)), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["catalogue_id"],
            ["setting_catalogues.id"],
            name=op.f("fk_catalogue_settings_catalogue_id_setting_catalogues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_settings")),
        sa.UniqueConstraint("catalogue_id", "setting_id", name=op.f("uq_catalogue_settings_catalogue_id_setting_id")),
    )
    op.add_column(
        "tenants", sa.Column("campaign_approval_threshold", sa.Integer(), server_default="500", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("tenants", "campaign_approval_threshold")
    op.drop_table("catalogue_settings")
    op.drop_index("ix_campaign_targets_tenant_id_serial", table_name="campaign_targets")
    op.drop_index("ix_campaign_targets_chunk_id", table_name="campaign_targets")
    op.drop_index("ix_campaign_targets_campaign_id_state", table_name="campaign_targets")
    op.drop_table("campaign_targets")
    op.drop_index("ix_campaign_chunks_campaign_id_state", table_name="campaign_chunks")
    op.drop_table("campaign_chunks")
    op.drop_table("setting_catalogues")
    op.drop_index("ix_campaigns_tenant_id_state", table_name="campaigns")
    op.drop_table("campaigns")
    for name in (
        "campaign_chunk_state",
        "campaign_chunk_kind",
        "campaign_target_state",
        "campaign_state",
        "campaign_kind",
    ):
        sa.Enum(name=name).drop(op.get_bind(), checkfirst=True)
