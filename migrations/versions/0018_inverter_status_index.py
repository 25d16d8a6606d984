"""mirror: index inverters by their case-folded status, the expression the statusIn filter compares

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_mirror_inverters_tenant_id_status_folded", "mirror_inverters",
                    ["tenant_id", sa.text("upper(coalesce(status, ''))")], unique=False)


def downgrade() -> None:
    op.drop_index("ix_mirror_inverters_tenant_id_status_folded", table_name="mirror_inverters")
