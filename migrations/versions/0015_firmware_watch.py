"""firmware watches: a cohort followed towards a target firmware, its frozen members

Revision ID: 0015
Revises: 0011
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "firmware_watches",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("firmware_arm_min", sa.Integer(), nullable=True),
        sa.Column("firmware_arm_max", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("target_firmware_arm", sa.Integer(), nullable=False),
        sa.Column("straggler_days", sa.Integer(), nullable=False),
        sa.Column("restricted_account_id", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("last_restart_campaign_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["last_restart_campaign_id"], ["campaigns.id"],
                                name=op.f("fk_firmware_watches_last_restart_campaign_id_campaigns"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_firmware_watches_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firmware_watches")),
    )
    op.create_index("ix_firmware_watches_tenant_id_created_at", "firmware_watches", ["tenant_id", "created_at"],
                    unique=False)
    op.create_table(
        "firmware_watch_members",
        sa.Column("watch_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("firmware_arm_at_start", sa.String(length=32), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=op.f("fk_firmware_watch_members_tenant_id_tenants"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["watch_id"], ["firmware_watches.id"],
                                name=op.f("fk_firmware_watch_members_watch_id_firmware_watches"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firmware_watch_members")),
        sa.UniqueConstraint("watch_id", "serial", name=op.f("uq_firmware_watch_members_watch_id_serial")),
    )


def downgrade() -> None:
    op.drop_table("firmware_watch_members")
    op.drop_index("ix_firmware_watches_tenant_id_created_at", table_name="firmware_watches")
    op.drop_table("firmware_watches")
