"""index for the delivery log's retention pass

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 14:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_webhook_deliveries_finished", "webhook_deliveries", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_finished", table_name="webhook_deliveries")
