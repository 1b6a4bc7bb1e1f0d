"""Webhook signing secrets are sealed at rest: new ones as they are made, and the plain
ones an older version stored by migration 0009, on both databases."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from cryptography.fernet import Fernet
from sqlalchemy import Connection, select, update

from gengate.credentials import CredentialBox
from gengate.store import Store
from gengate.store.migrate import alembic_config, migrate
from gengate.store.tables import users

from ..conftest import fresh_postgres

KEYS = [Fernet.generate_key().decode()]


@pytest.fixture(params=["sqlite", "postgres"])
async def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A store at the schema before secrets were sealed."""
    if request.param == "sqlite":
        st = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
        await migrate(st.db, "0006")
        yield st
        await st.close()
        return
    async with fresh_postgres() as url:
        st = Store.open(url)
        await migrate(st.db, "0006")
        yield st
        await st.close()


def _downgrade(conn: Connection, revision: str) -> None:
    command.downgrade(alembic_config(conn, KEYS), revision)


def _stored(conn: Connection, user_id: int) -> str:
    """The stored column, "" for none."""
    value = conn.execute(select(users.c.webhook_secret)
                         .where(users.c.id == user_id)).scalar_one()
    return str(value or "")


def _old_user(conn: Connection, email: str, now: float) -> int:
    """A user row as the schema at 0006 holds it (the store's own insert names columns
    later migrations add)."""
    return int(conn.execute(
        users.insert().values(email=email, balance=0, freeze_balance=0, max_queue=10,
                              in_flight=0, active=True, created_at=now)
        .returning(users.c.id)).scalar_one())


def _set_plain(conn: Connection, user_id: int, value: str) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(webhook_secret=value))


async def test_the_migration_seals_plain_secrets(old_store: Store) -> None:
    now = time.time()
    first_id = await old_store.db.run(_old_user, "a@example.com", now)
    second_id = await old_store.db.run(_old_user, "b@example.com", now)
    plain = "whsec_" + "A" * 32
    await old_store.db.run(_set_plain, first_id, plain)
    with pytest.raises(RuntimeError, match="secret key"):
        await migrate(old_store.db)  # without the key nothing can be sealed
    await migrate(old_store.db, keys=KEYS)
    box = CredentialBox(KEYS)
    sealed = await old_store.db.read(_stored, first_id)
    assert sealed and plain not in sealed and box.open_text(sealed) == plain
    assert await old_store.db.read(_stored, second_id) == ""
    # the user keeps the same secret; a new one is sealed as it is made
    assert await old_store.signing_secret(first_id, box) == plain
    made = await old_store.signing_secret(second_id, box)
    assert made.startswith("whsec_") and made not in await old_store.db.read(_stored, second_id)
    assert await old_store.signing_secret(second_id, box) == made
    rotated = await old_store.signing_secret(first_id, box, rotate=True)
    assert rotated != plain
    assert box.open_text(await old_store.db.read(_stored, first_id)) == rotated
    # and back: a downgrade opens them again
    await old_store.db.run(_downgrade, "0006")
    assert await old_store.db.read(_stored, first_id) == rotated
