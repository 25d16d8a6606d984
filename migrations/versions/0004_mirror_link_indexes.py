"""mirror: index the dongle and inverter links that loaders and filters look up

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 07:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_mirror_dongles_tenant_id_account_upstream_id",
        "mirror_dongles",
        ["tenant_id", "account_upstream_id"],
        unique=False,
    )
    op.create_index(
        "ix_mirror_dongles_tenant_id_site_upstream_id",
        "mirror_dongles",
        ["tenant_id", "site_upstream_id"],
        unique=False,
    )
    op.create_index(
        "ix_mirror_inverters_tenant_id_dongle_serial",
        "mirror_inverters",
        ["tenant_id", "dongle_serial"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_mirror_inverters_tenant_id_dongle_serial", table_name="mirror_inverters")
    op.drop_index("ix_mirror_dongles_tenant_id_site_upstream_id", table_name="mirror_dongles")
    op.drop_index("ix_mirror_dongles_tenant_id_account_upstream_id", table_name="mirror_dongles")
