"""Jobs at scale: fetch-list of one product and status, and the operator's newest jobs,
read through indexes at any table size; the status page's per-day figures kept per day
once the day's jobs have all ended

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_user_product_status", "jobs",
                    ["user_id", "product", "status", "created_at"], unique=False)
    op.create_index("ix_jobs_created", "jobs", ["created_at"], unique=False)
    op.create_table(
        "job_days",
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("product", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("jobs", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("day", "product", "status", name=op.f("pk_job_days")),
    )


def downgrade() -> None:
    op.drop_table("job_days")
    op.drop_index("ix_jobs_created", table_name="jobs")
    op.drop_index("ix_jobs_user_product_status", table_name="jobs")
