"""The operator's prices (``price_overrides``): written with a bump of the version every
process polls, so each reloads them (gengate.prices)."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select, update

from gengate.store.keyrows import bump_version
from gengate.store.tables import price_overrides

__all__ = ["list_prices", "remove_price", "set_price"]


def list_prices(conn: Connection) -> list[tuple[str, str, int]]:
    t = price_overrides
    return [(r.tier, r.key, int(r.price))
            for r in conn.execute(select(t.c.tier, t.c.key, t.c.price))]


def set_price(conn: Connection, tier: str, key: str, milli: int, now: float) -> None:
    t = price_overrides
    done = conn.execute(update(t).where(t.c.tier == tier, t.c.key == key)
                        .values(price=milli, updated_at=now))
    if done.rowcount == 0:
        conn.execute(insert(t).values(tier=tier, key=key, price=milli, updated_at=now))
    bump_version(conn)


def remove_price(conn: Connection, tier: str, key: str) -> bool:
    t = price_overrides
    done = conn.execute(delete(t).where(t.c.tier == tier, t.c.key == key))
    if done.rowcount:
        bump_version(conn)
    return bool(done.rowcount)
