"""api keys: the demo admin key `givfleet up` issued is marked, not recognised by its name (a user's key named
"demo admin" stopped `up` from issuing it)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("demo_key", sa.Boolean(), nullable=False, server_default=sa.false()))
    # The keys `up` already issued: their audit rows name `up` as the creator (a user's key names the CLI or a key).
    op.execute("UPDATE api_keys SET demo_key = true WHERE EXISTS (SELECT 1 FROM audit_events WHERE "
               "audit_events.action = 'apikey.create' AND audit_events.actor = 'givfleet-up' "
               "AND audit_events.target_type = 'api_key' AND audit_events.target_id = api_keys.id::text)")


def downgrade() -> None:
    op.drop_column("api_keys", "demo_key")
