"""upstream accounts name the products they run

Revision ID: 0007
Revises: 0009
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0009"  # 0008, 0010 and 0009 landed on main first
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("upstream_accounts") as batch:
        batch.add_column(sa.Column("products", sa.Text(), nullable=False,
                                   server_default='["midjourney"]'))
    # the built-in renderer runs every product
    op.execute("UPDATE upstream_accounts SET products = '[\"*\"]' WHERE provider = 'local'")


def downgrade() -> None:
    with op.batch_alter_table("upstream_accounts") as batch:
        batch.drop_column("products")
