"""notifications: a GivEnergy channel remembers it named a credential (deleted: it fails, not another token)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 11:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("notification_channels", sa.Column("credential_pinned", sa.Boolean(), nullable=False,
                                                     server_default=sa.false()))
    op.execute("UPDATE notification_channels SET credential_pinned = true WHERE credential_id IS NOT NULL")


def downgrade() -> None:
    op.drop_column("notification_channels", "credential_pinned")
