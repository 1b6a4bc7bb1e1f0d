"""Alembic environment: runs on the connection gengate hands it (see ``gengate.store.migrate``)."""

from __future__ import annotations

from alembic import context

from gengate.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - gengate always passes a connection
    raise RuntimeError("run migrations through `gengate migrate`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
