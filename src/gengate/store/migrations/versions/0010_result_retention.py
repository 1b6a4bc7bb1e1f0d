"""result retention: expiry and the claim of the node deleting a job's result files

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-02 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("result_expired_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("result_claim_owner", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("result_claim_until", sa.Float(), nullable=True))
    op.create_index("ix_jobs_results_live", "jobs", ["status", "finished_at"],
                    postgresql_where=sa.text("result_expired_at IS NULL"),
                    sqlite_where=sa.text("result_expired_at IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_jobs_results_live", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("result_claim_until")
        batch.drop_column("result_claim_owner")
        batch.drop_column("result_expired_at")
