"""budget salt: the one secret that keys the rate budgets' names in Redis, kept apart from Redis

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-01 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budget_salt",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("salt", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_budget_salt_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_salt")),
    )


def downgrade() -> None:
    op.drop_table("budget_salt")
