"""API keys with limits: names, products, models, addresses, expiry, spend caps, rates;
the key behind each job, ledger row and LLM usage row; the key-change version

Every existing key keeps working: each new column is empty (no limit) or zero.

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0007"
branch_labels = None
depends_on = None

def _key_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("name", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("products", sa.Text(), nullable=True),
        sa.Column("models", sa.Text(), nullable=True),
        sa.Column("cidrs", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("rate_per_second", sa.Integer(), nullable=True),
        sa.Column("rate_per_minute", sa.Integer(), nullable=True),
        sa.Column("cap_day", sa.BigInteger(), nullable=True),
        sa.Column("cap_month", sa.BigInteger(), nullable=True),
        sa.Column("cap_total", sa.BigInteger(), nullable=True),
        sa.Column("spent_day", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("spent_day_on", sa.String(length=10), nullable=False, server_default=""),
        sa.Column("spent_month", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("spent_month_on", sa.String(length=7), nullable=False, server_default=""),
        sa.Column("spent_total", sa.BigInteger(), nullable=False, server_default="0"),
    ]


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        for column in _key_columns():
            batch_op.add_column(column)
    for table in ("jobs", "ledger", "llm_usage"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("key_id", sa.Integer(), nullable=True))
    key_state = op.create_table(
        "key_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_state")),
    )
    op.bulk_insert(key_state, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("key_state")
    for table in ("llm_usage", "ledger", "jobs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("key_id")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        for column in reversed(_key_columns()):
            batch_op.drop_column(column.name)
