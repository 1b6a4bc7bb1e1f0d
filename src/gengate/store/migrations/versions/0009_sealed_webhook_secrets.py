"""sealed webhook signing secrets

Revision ID: 0009
Revises: 0010
Create Date: 2026-12-02 05:40:00

Users' webhook signing secrets are sealed at rest with the deployment's secret key, like
upstream credentials: the column widens to hold a Fernet token, and the plain ``whsec_``
secrets already stored are sealed in place (the same secret: receivers need no change).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from gengate.credentials import CredentialBox


revision = '0009'
down_revision = '0010'
branch_labels = None
depends_on = None

_users = sa.table('users', sa.column('id', sa.Integer),
                  sa.column('webhook_secret', sa.String))


def _box() -> CredentialBox | None:
    keys = context.config.attributes.get("secret_keys")
    return CredentialBox(keys) if keys else None


def _stored() -> list[tuple[int, str]]:
    rows = op.get_bind().execute(sa.select(_users.c.id, _users.c.webhook_secret)
                                 .where(_users.c.webhook_secret.is_not(None)))
    return [(row.id, row.webhook_secret) for row in rows]


def _set(user_id: int, value: str | None) -> None:
    op.get_bind().execute(_users.update().where(_users.c.id == user_id)
                          .values(webhook_secret=value))


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('webhook_secret', existing_type=sa.String(length=64),
                              type_=sa.String(length=512), existing_nullable=True)
    plain = [(uid, value) for uid, value in _stored() if value.startswith('whsec_')]
    if not plain:
        return
    box = _box()
    if box is None:
        raise RuntimeError("sealing webhook secrets needs the secret key: run the migration "
                           "through `gengate migrate` or `gengate serve`")
    for user_id, value in plain:
        _set(user_id, box.seal_text(value))


def downgrade() -> None:
    box = _box()
    for user_id, value in _stored():
        if not value.startswith('whsec_'):
            # without the key a secret cannot be opened: the user gets a new one on next use
            _set(user_id, box.open_text(value) if box is not None else None)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('webhook_secret', existing_type=sa.String(length=512),
                              type_=sa.String(length=64), existing_nullable=True)
