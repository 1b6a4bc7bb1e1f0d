"""Alembic migrations, run on gengate's own connection (SQLite or PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from gengate.store.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None,
                   keys: list[str] | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    cfg.attributes["secret_keys"] = keys
    return cfg


#: PostgreSQL advisory lock id held while migrating, so nodes starting together take turns
MIGRATION_LOCK = 7_243_001


def _upgrade(conn: Connection, revision: str, keys: list[str] | None) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
    command.upgrade(alembic_config(conn, keys), revision)
    if conn.dialect.name == "sqlite":
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"migration left rows without their parents: {broken[:5]}")


def _foreign_keys(conn: Connection, on: bool) -> None:
    conn.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


async def migrate(database: Database, revision: str = "head",
                  keys: list[str] | None = None) -> None:
    """Bring the schema up to ``revision``; ``keys`` are the deployment's secret keys
    (``gengate.credentials.load_key``), for migrations that seal stored secrets."""
    if not database.is_sqlite:
        await database.run(_upgrade, revision, keys)
        return
    # SQLite alters a column by rebuilding its table (copy, drop, rename): with foreign
    # keys on, dropping a table other rows refer to (users: keys, jobs) fails. They are
    # off while migrating (the pragma only changes outside a transaction) and checked
    # before the commit instead.
    await database.read(_foreign_keys, False)
    try:
        await database.run(_upgrade, revision, keys)
    finally:
        await database.read(_foreign_keys, True)


def _new_revision(conn: Connection, message: str) -> str:
    command.upgrade(alembic_config(conn), "head")
    number = len(list((MIGRATIONS / "versions").glob("[0-9]*.py"))) + 1
    script = command.revision(alembic_config(conn), message=message, autogenerate=True,
                              rev_id=f"{number:04d}")
    return str(getattr(script, "path", ""))


async def new_revision(database: Database, message: str) -> str:
    """For developers: write the next migration from the difference between the schema
    and ``store/tables.py``; returns the new file's path."""
    return await database.run(_new_revision, message)
