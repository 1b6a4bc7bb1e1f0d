"""The store: jobs (which are also the queue), users, keys and the quota ledger.

The only package that imports SQLAlchemy. Every method is one transaction.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from gengate.accounts import Account, FailureKind, Transition
from gengate.errors import GengateError
from gengate.jobs import Job, JobStatus
from gengate.store import (
    accountrows,
    channels,
    claims,
    consolerows,
    jobrows,
    keyrows,
    llmrows,
    outbox,
    pricerows,
    resultrows,
    userrows,
)
from gengate.store.accountrows import AccountRow
from gengate.store.database import Database
from gengate.store.jobrows import Admission
from gengate.store.keyrows import KeyRow
from gengate.store.migrate import migrate
from gengate.store.outbox import Bodies, Delivery
from gengate.store.userrows import LedgerEntry, User

__all__ = ["AccountRow", "Admission", "Claimed", "Database", "Delivery", "KeyRow", "LedgerEntry",
           "Store", "User", "migrate"]

Claimed = claims.Claimed


def _nobody(job_id: str) -> None:
    """No one waits on jobs ending (the default :attr:`Store.ended`)."""


class Store:
    """Async facade over the row functions; see ``jobrows`` and ``userrows``."""

    def __init__(self, database: Database, bodies: Bodies | None = None):
        self.db = database
        if bodies is None:
            from gengate.products.registry import builtin

            bodies = builtin().fetch_body
        #: a job's fetch body in its product's shape (the webhook body)
        self.bodies = bodies
        #: called with a job's id after the transaction that ended it committed (the
        #: synchronous routes' waiters, :class:`gengate.waiting.JobEnds`)
        self.ended: Callable[[str], None] = _nobody

    @classmethod
    def open(cls, url: str, bodies: Bodies | None = None, *,
             pool: tuple[int, int] | None = None) -> Store:
        """``bodies``: a job's fetch body (the products' registry); ``pool``: PostgreSQL
        pool size and overflow (the defaults when None)."""
        if pool is None:
            return cls(Database(url), bodies)
        return cls(Database(url, pool_size=pool[0], max_overflow=pool[1]), bodies)

    async def migrate(self, keys: list[str] | None = None) -> None:
        """Bring the schema up to date; ``keys`` (the secret keys) seal the secrets that
        a migration moves under seal."""
        await migrate(self.db, keys=keys)

    async def close(self) -> None:
        await self.db.close()

    # -- jobs ---------------------------------------------------------------------------
    async def admit(self, items: list[Admission], now: float) -> list[Job | GengateError]:
        return await self.db.run(jobrows.admit_batch, items, now, only_adds_jobs=True)

    def jobs_stamp(self) -> tuple[int, int] | None:
        """Unchanged for as long as no job's row can have changed (None: not known, so
        every read must go to the database); :meth:`Database.jobs_stamp`."""
        return self.db.jobs_stamp()

    async def get_job(self, job_id: str) -> Job | None:
        return await self.db.read(jobrows.get_job, job_id)

    async def get_jobs(self, job_ids: list[str]) -> dict[str, Job]:
        return await self.db.read(jobrows.get_jobs, job_ids)

    async def job_inputs(self, job_id: str) -> list[bytes]:
        return await self.db.read(jobrows.job_inputs_of, job_id)

    async def list_jobs(self, user_id: int, status: str | list[str] | None, page: int,
                        limit: int, ascending: bool, product: str | None = None) -> list[Job]:
        return await self.db.read(jobrows.list_jobs, user_id, status, page, limit, ascending,
                                  product)

    async def claim(self, owner: str, limit: int, now: float, lease: float,
                    rng: random.Random) -> claims.Claimed:
        claimed = await self.db.run(claims.claim, owner, limit, now, lease, rng, self.bodies)
        for job_id in claimed.failed:
            self.ended(job_id)
        return claimed

    async def requeue(self, job: Job, owner: str, orphan: str | None = None) -> bool:
        return await self.db.run(claims.requeue, job, owner, orphan)

    async def mark_submitting(self, job_id: str, owner: str, tag: str, now: float,
                              lease: float) -> bool:
        return await self.db.run(jobrows.mark_submitting, job_id, owner, tag, now, lease)

    async def unmark_submitting(self, job_id: str, owner: str) -> None:
        await self.db.run(jobrows.unmark_submitting, job_id, owner)

    async def renew(self, owner: str, job_ids: list[str], until: float) -> set[str]:
        return await self.db.run(jobrows.renew, owner, job_ids, until)

    async def record_upstream(self, job_id: str, owner: str, upstream_id: str,
                              provider: str) -> bool:
        return await self.db.run(jobrows.record_upstream, job_id, owner, upstream_id, provider)

    async def record_progress(self, owner: str, items: list[tuple[str, int]],
                              now: float) -> set[str]:
        return await self.db.run(jobrows.record_progress, owner, items, now, self.bodies)

    async def publish(self, channel: str, payload: str) -> None:
        """NOTIFY ``channel`` on every node (PostgreSQL; nothing on SQLite)."""
        if not self.db.is_sqlite:
            await self.db.run(channels.notify, channel, payload)

    async def release(self, job_id: str, owner: str) -> None:
        await self.db.run(jobrows.release, job_id, owner)

    async def release_owned(self, owner: str) -> int:
        return await self.db.run(jobrows.release_owned, owner)

    # -- result files (retention and moves) ----------------------------------------------
    async def claim_expiring_results(self, cutoffs: dict[str, float | None],
                                     default: float | None,
                                     owner: str, now: float, lease: float,
                                     batch: int) -> list[resultrows.Expiring]:
        return await self.db.run(resultrows.claim_expiring, cutoffs, default, owner, now,
                                 lease, batch)

    async def mark_result_expired(self, job_id: str, owner: str, result: dict[str, Any],
                                  now: float) -> bool:
        return await self.db.run(resultrows.mark_expired, job_id, owner, result, now)

    async def release_result_claim(self, job_id: str, owner: str) -> None:
        await self.db.run(resultrows.release_claim, job_id, owner)

    async def stored_results(self, after: str, limit: int) -> list[resultrows.StoredResult]:
        return await self.db.read(resultrows.stored_results, after, limit)

    async def switch_result(self, job_id: str, raw: str, result: dict[str, Any]) -> bool:
        return await self.db.run(resultrows.switch_result, job_id, raw, result)

    async def succeed(self, job_id: str, owner: str | None, result: dict[str, Any],
                      now: float) -> bool:
        done = await self.db.run(jobrows.succeed, job_id, owner, result, now, self.bodies)
        if done:
            self.ended(job_id)
        return done

    async def fail(self, job_id: str, owner: str | None, message: str, now: float,
                   illegal_limit: int | None = None) -> bool:
        done = await self.db.run(jobrows.fail, job_id, owner, message, now, self.bodies,
                                 illegal_limit)
        if done:
            self.ended(job_id)
        return done

    async def cancel(self, job_id: str, user_id: int, status: JobStatus, message: str,
                     now: float) -> Job | None:
        job = await self.db.run(jobrows.cancel, job_id, user_id, status, message, now,
                                self.bodies)
        if job is not None:
            self.ended(job_id)
        return job

    async def overdue(self, now: float) -> list[str]:
        return await self.db.read(jobrows.overdue, now)

    async def mode_stats(self, since: float) -> list[Any]:
        return await self.db.read(jobrows.mode_stats, since)

    async def queue_depth(self) -> list[Any]:
        return await self.db.read(jobrows.queue_depth)

    async def illegal_count(self, user_id: int, now: float) -> int:
        return await self.db.read(jobrows.read_counter, user_id, "illegal_prompts", now)

    # -- users, keys, ledger ------------------------------------------------------------
    async def create_user(self, email: str, balance: int, max_queue: int, now: float) -> User:
        return await self.db.run(userrows.create_user, email, balance, max_queue, now)

    async def get_user(self, user_id: int) -> User:
        return await self.db.read(userrows.get_user, user_id)

    async def find_user_by_email(self, email: str) -> User | None:
        return await self.db.read(userrows.find_user_by_email, email)

    async def list_users(self) -> list[User]:
        return await self.db.read(userrows.list_users)

    async def topup(self, user_id: int, amount: int, now: float, note: str = "") -> User:
        return await self.db.run(userrows.topup, user_id, amount, now, note)

    async def update_user(self, user_id: int, values: dict[str, Any]) -> User:
        return await self.db.run(userrows.update_user, user_id, values)

    # -- API keys ---------------------------------------------------------------------
    async def create_key(self, user_id: int, key_hash: str, prefix: str, now: float,
                         limits: dict[str, Any]) -> KeyRow:
        return await self.db.run(keyrows.create, user_id, key_hash, prefix, now, limits)

    async def get_key(self, user_id: int, key_id: int, now: float) -> KeyRow:
        return await self.db.read(keyrows.get, user_id, key_id, now)

    async def list_keys(self, user_id: int, now: float) -> list[KeyRow]:
        return await self.db.read(keyrows.list_rows, user_id, now)

    async def modify_key(self, user_id: int, key_id: int, limits: dict[str, Any],
                         now: float) -> KeyRow:
        return await self.db.run(keyrows.modify, user_id, key_id, limits, now)

    async def rotate_key(self, user_id: int, key_id: int, key_hash: str, prefix: str,
                         now: float) -> KeyRow:
        return await self.db.run(keyrows.rotate, user_id, key_id, key_hash, prefix, now)

    async def revoke_key(self, user_id: int, key_id: int, now: float) -> None:
        await self.db.run(keyrows.revoke, user_id, key_id, now)

    async def key_by_hash(self, key_hash: str) -> tuple[User, KeyRow] | None:
        return await self.db.read(keyrows.key_by_hash, key_hash)

    async def key_version(self) -> int:
        return await self.db.read(keyrows.version)

    async def keys_changed(self) -> int:
        return await self.db.run(keyrows.bump_version)

    async def key_spend(self, user_id: int, since: float) -> list[dict[str, Any]]:
        return await self.db.read(keyrows.spend_by_day, user_id, since)

    async def ledger(self, user_id: int, limit: int, offset: int) -> list[LedgerEntry]:
        return await self.db.read(userrows.ledger_of, user_id, limit, offset)

    async def ledger_totals(self, user_id: int) -> dict[str, int]:
        return await self.db.read_slow(userrows.ledger_totals, user_id)

    # -- the console ----------------------------------------------------------------------
    async def set_password(self, user_id: int, password_hash: str | None) -> None:
        await self.db.run(consolerows.set_password, user_id, password_hash)

    async def password_of(self, email: str) -> tuple[User, str | None] | None:
        return await self.db.read(consolerows.password_of, email)

    async def all_jobs(self, user_id: int | None, product: str | None, status: str | None,
                       limit: int) -> list[Job]:
        return await self.db.read(consolerows.all_jobs, user_id, product, status, limit)

    async def all_ledger(self, filters: dict[str, Any], limit: int, offset: int
                         ) -> tuple[list[dict[str, Any]], dict[str, int], int]:
        return await self.db.read_slow(consolerows.all_ledger, filters, limit, offset)

    async def price_overrides(self) -> list[tuple[str, str, int]]:
        return await self.db.read(pricerows.list_prices)

    async def set_price(self, tier: str, key: str, milli: int, now: float) -> None:
        await self.db.run(pricerows.set_price, tier, key, milli, now)

    async def remove_price(self, tier: str, key: str) -> bool:
        return await self.db.run(pricerows.remove_price, tier, key)

    async def signin_attempt(self, address: str, now: float, window: float,
                             attempts: int) -> float | None:
        return await self.db.run(consolerows.signin_attempt, address[:64], now, window,
                                 attempts)

    async def all_deliveries(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        return await self.db.read(consolerows.all_deliveries, status, limit)

    async def create_incident(self, kind: str, title: str, products: list[str], state: str,
                              message: str, now: float) -> int:
        return await self.db.run(consolerows.create_incident, kind, title, products, state,
                                 message, now)

    async def update_incident(self, incident_id: int, state: str, message: str,
                              resolved: bool, now: float) -> None:
        await self.db.run(consolerows.update_incident, incident_id, state, message, resolved,
                          now)

    async def incidents(self, since: float, limit: int) -> list[dict[str, Any]]:
        return await self.db.read(consolerows.list_incidents, since, limit)

    async def daily_history(self, since: float, now: float) -> list[consolerows.DayRow]:
        """Finished jobs per product, UTC day and status from the day of ``since`` to
        today: days whose jobs have all ended from ``job_days`` (the first look at such a
        day writes it there), the others from the jobs. The counts over the jobs are slow
        reads (:meth:`Database.read_slow`): the first look after an upgrade counts 90 days,
        seconds at a million jobs, while the server answers everything else."""
        first, today = int(since // consolerows.DAY), int(now // consolerows.DAY)
        last_closed = min(consolerows.closed_until(now), today)
        written: dict[int, list[consolerows.DayRow]] = {}
        if last_closed >= first:
            written = await self.db.read(consolerows.written_days, first, last_closed)
            missing = [d for d in range(first, last_closed + 1) if d not in written]
            if missing:
                counted = await self.db.read_slow(consolerows.count_days, missing)
                await self.db.run(consolerows.write_days, counted)
                written.update(await self.db.read(consolerows.written_days, missing[0],
                                                  missing[-1]))
        rows = [row for day in written.values() for row in day]
        still = [d for d in range(first, today + 1) if d not in written]
        if still:
            rows += await self.db.read_slow(consolerows.open_days, still)
        return rows

    # -- webhooks -----------------------------------------------------------------------
    async def claim_deliveries(self, owner: str, limit: int, now: float, lease: float,
                               box: outbox.Sealer) -> list[Delivery]:
        return await self.db.run(outbox.claim, owner, limit, now, lease, box)

    async def release_deliveries(self, owner: str) -> int:
        return await self.db.run(outbox.release_owned, owner)

    async def record_attempt(self, delivery: Delivery, owner: str, started: float,
                             duration_ms: float, status_code: int | None, error: str | None,
                             next_at: float | None, delivered: bool) -> bool:
        return await self.db.run(outbox.record_attempt, delivery, owner, started,
                                 duration_ms, status_code, error, next_at, delivered)

    async def signing_secret(self, user_id: int, box: outbox.Sealer,
                             rotate: bool = False) -> str:
        return await self.db.run(outbox.signing_secret, user_id, box, rotate)

    async def deliveries(self, user_id: int, job_id: str | None, page: int,
                         limit: int) -> list[dict[str, Any]]:
        return await self.db.read(outbox.deliveries_of, user_id, job_id, page, limit)

    async def redeliver(self, user_id: int, delivery_id: str, now: float) -> None:
        await self.db.run(outbox.redeliver, user_id, delivery_id, now)

    async def webhook_counts(self) -> dict[str, int]:
        return await self.db.read_slow(outbox.counts)

    async def purge_deliveries(self, before: float) -> int:
        return await self.db.run(outbox.purge, before)

    async def next_delivery_due(self) -> float | None:
        return await self.db.read(outbox.next_due)

    # -- LLM relay ----------------------------------------------------------------------
    async def llm_hold_many(self, holds: list[llmrows.Hold],
                            now: float) -> list[GengateError | None]:
        return await self.db.run(llmrows.hold_many, holds, now)

    async def llm_settle_many(self, items: list[tuple[llmrows.UsageRow, int]],
                              now: float) -> list[int]:
        return await self.db.run(llmrows.settle_many, items, now)

    async def llm_money_many(
            self, holds: list[llmrows.Hold], settles: list[tuple[llmrows.UsageRow, int]],
            now: float) -> tuple[list[GengateError | None], list[int]]:
        return await self.db.run(llmrows.money_many, holds, settles, now)

    async def llm_usage(self, user_id: int, page: int, limit: int,
                        peek: int = 0) -> list[llmrows.UsageRow]:
        return await self.db.read(llmrows.usage_of, user_id, page, limit, peek)

    async def llm_usage_totals(self, user_id: int, since: float) -> list[dict[str, Any]]:
        return await self.db.read(llmrows.usage_totals, user_id, since)

    async def llm_purge_usage(self, before: float) -> int:
        return await self.db.run(llmrows.purge_usage, before)

    # -- upstream accounts --------------------------------------------------------------
    async def create_account(self, values: dict[str, Any], now: float) -> AccountRow:
        return await self.db.run(accountrows.create, values, now)

    async def get_account(self, account_id: int, owner_id: int | None = None) -> AccountRow:
        return await self.db.read(accountrows.get, account_id, owner_id)

    async def account_for_worker(self, account_id: int) -> AccountRow | None:
        return await self.db.read(accountrows.get_any, account_id)

    async def list_accounts(self, owner_id: int | None) -> list[AccountRow]:
        return await self.db.read(accountrows.list_rows, owner_id)

    async def modify_account(self, account_id: int, owner_id: int | None,
                             values: dict[str, Any], now: float) -> AccountRow:
        return await self.db.run(accountrows.modify, account_id, owner_id, values, now)

    async def delete_account(self, account_id: int, owner_id: int | None, now: float) -> None:
        await self.db.run(accountrows.delete, account_id, owner_id, now)

    async def ensure_local_account(self, slots: dict[str, int], now: float) -> None:
        await self.db.run(accountrows.ensure_local, slots, now)

    async def live_accounts(self) -> list[Account]:
        return await self.db.read(accountrows.live)

    async def account_busy(self) -> dict[tuple[int, str], int]:
        return await self.db.read(accountrows.busy)

    async def account_failure(self, account_id: int, kind: FailureKind, detail: str,
                              retry_after: float | None, now: float,
                              probe_interval: float) -> Transition | None:
        return await self.db.run(accountrows.record_failure, account_id, kind, detail,
                                 retry_after, now, probe_interval)

    async def account_ok(self, account_id: int, now: float, reason: str) -> bool:
        return await self.db.run(accountrows.record_ok, account_id, now, reason)

    async def due_probes(self, now: float, interval: float) -> list[AccountRow]:
        return await self.db.run(accountrows.due_probes, now, interval)

    async def reseal_accounts(self, rotate: Any) -> int:
        return await self.db.run(accountrows.reseal, rotate)

    async def account_events(self, account_id: int, limit: int = 50) -> list[dict[str, Any]]:
        return await self.db.read(accountrows.events, account_id, limit)
