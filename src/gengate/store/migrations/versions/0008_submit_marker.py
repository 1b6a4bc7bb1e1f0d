"""a job's submit in flight: its tag, and how many submits may have started a task

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-02 05:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("submit_tag", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("sends", sa.Integer(), server_default="0",
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("sends")
        batch_op.drop_column("submit_tag")
