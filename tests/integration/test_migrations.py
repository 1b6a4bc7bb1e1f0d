"""The migrations build exactly the tables the code declares, on both databases."""

from __future__ import annotations

from typing import Any, cast

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from gengate.store import Store
from gengate.store.tables import metadata

from .test_store import store  # noqa: F401 - the SQLite/PostgreSQL store fixture


def _diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return cast("list[Any]", compare_metadata(context, metadata))


async def test_migrations_match_the_tables(store: Store) -> None:  # noqa: F811
    assert await store.db.read(_diff) == []
