"""upstream accounts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 16:09:55.139343
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('upstream_accounts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('base_url', sa.Text(), nullable=True),
    sa.Column('credentials', sa.Text(), nullable=True),
    sa.Column('options', sa.Text(), nullable=False),
    sa.Column('slots', sa.Text(), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('state_reason', sa.Text(), nullable=False),
    sa.Column('state_until', sa.Float(), nullable=True),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('next_probe_at', sa.Float(), nullable=False),
    sa.Column('daily_cap', sa.Integer(), nullable=True),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('day_count', sa.Integer(), nullable=False),
    sa.Column('min_gap', sa.Float(), nullable=False),
    sa.Column('gap_jitter', sa.Float(), nullable=False),
    sa.Column('next_submit_at', sa.Float(), nullable=False),
    sa.Column('work_hours', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.Column('deleted_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_upstream_accounts')),
    sa.UniqueConstraint('owner_id', 'name', name='uq_upstream_accounts_owner_name')
    )
    op.create_table('account_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('from_state', sa.String(length=16), nullable=False),
    sa.Column('to_state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['upstream_accounts.id'], name=op.f('fk_account_events_account_id_upstream_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_events'))
    )
    with op.batch_alter_table('account_events', schema=None) as batch_op:
        batch_op.create_index('ix_account_events_account_at', ['account_id', 'at'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('slot_mode', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('hosted', sa.Boolean(), server_default='0', nullable=False))
        batch_op.create_index('ix_jobs_account_status', ['account_id', 'status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_account_status')
        batch_op.drop_column('hosted')
        batch_op.drop_column('slot_mode')
        batch_op.drop_column('account_id')

    with op.batch_alter_table('account_events', schema=None) as batch_op:
        batch_op.drop_index('ix_account_events_account_at')

    op.drop_table('account_events')
    op.drop_table('upstream_accounts')
