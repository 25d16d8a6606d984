"""mirror: sync runs carry a lease (owner, expiry) renewed by a heartbeat instead of an advisory lock

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("mirror_sync_runs", sa.Column("lease_owner", sa.String(length=100), nullable=True))
    op.add_column("mirror_sync_runs", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    # Runs left running before this revision have no lease: the sweeper revives them at its first tick.
    op.execute("UPDATE mirror_sync_runs SET lease_expires_at = heartbeat_at WHERE state = 'running'")
    op.create_index(
        "ix_mirror_sync_runs_lease_expires_at",
        "mirror_sync_runs",
        ["lease_expires_at"],
        unique=False,
        postgresql_where=sa.text("state = 'running'"),
    )


def downgrade() -> None:
    op.drop_index("ix_mirror_sync_runs_lease_expires_at", table_name="mirror_sync_runs")
    op.drop_column("mirror_sync_runs", "lease_expires_at")
    op.drop_column("mirror_sync_runs", "lease_owner")
