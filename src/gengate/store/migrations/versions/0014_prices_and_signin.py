"""Prices the operator sets at run time (over the built-in table and the environment's), and
console sign-in attempts shared by every node

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 10:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "price_overrides",
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("tier", "key", name=op.f("pk_price_overrides")),
    )
    op.create_table(
        "signin_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signin_attempts")),
    )
    op.create_index("ix_signin_attempts_address_at", "signin_attempts", ["address", "at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_signin_attempts_address_at", table_name="signin_attempts")
    op.drop_table("signin_attempts")
    op.drop_table("price_overrides")
