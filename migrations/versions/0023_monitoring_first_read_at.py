"""monitoring inverters: when the monitor first read each inverter's events (faults over before then, when
monitoring began, are not raised; later reads may list faults that ended before the read before, reported late)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("monitoring_inverters", sa.Column("first_read_at", sa.DateTime(timezone=True), nullable=True))
    # Inverters already read: their last read is the earliest time still known to be one.
    op.execute("UPDATE monitoring_inverters SET first_read_at = events_read_at")


def downgrade() -> None:
    op.drop_column("monitoring_inverters", "first_read_at")
