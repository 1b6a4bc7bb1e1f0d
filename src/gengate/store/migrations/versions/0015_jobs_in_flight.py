"""Jobs in flight: the worker finds the live jobs past their deadline, and the running
ones whose lease lapsed, through partial indexes that hold only live jobs

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 10:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

LIVE = "status IN ('PENDING_QUEUE', 'ON_QUEUE')"
RUNNING = "status = 'ON_QUEUE'"


def upgrade() -> None:
    op.create_index("ix_jobs_live_deadline", "jobs", ["status", "deadline"], unique=False,
                    postgresql_where=sa.text(LIVE), sqlite_where=sa.text(LIVE))
    op.create_index("ix_jobs_running_lease", "jobs", ["status", "lease_expires_at"],
                    unique=False, postgresql_where=sa.text(RUNNING),
                    sqlite_where=sa.text(RUNNING))


def downgrade() -> None:
    op.drop_index("ix_jobs_running_lease", table_name="jobs")
    op.drop_index("ix_jobs_live_deadline", table_name="jobs")
