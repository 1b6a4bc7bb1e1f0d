"""PostgreSQL NOTIFY channels: a commit that makes work wakes idle nodes at once."""

from __future__ import annotations

from sqlalchemy import Connection, text

#: new or released jobs; workers listen
JOBS_CHANNEL = "gengate_jobs"
#: new or redelivered webhook notifications; dispatchers listen
WEBHOOKS_CHANNEL = "gengate_webhooks"
#: a key was revoked, rotated or changed, or a user deactivated; API processes listen
KEYS_CHANNEL = "gengate_keys"
#: an upstream told of a task's end (payload: ``account id:task id``); workers listen
UPSTREAM_CHANNEL = "gengate_upstream"
#: a job a synchronous route waits on ended (payload: its id); API nodes serving
#: synchronous routes listen
ENDED_CHANNEL = "gengate_job_ended"


def notify(conn: Connection, channel: str, payload: str | None = None) -> None:
    """Wake listeners on other nodes when this transaction commits (PostgreSQL only; on
    SQLite the one process wakes itself)."""
    if conn.dialect.name != "postgresql":
        return
    if payload is None:
        conn.exec_driver_sql(f"NOTIFY {channel}")
    else:
        conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                     {"channel": channel, "payload": payload})
