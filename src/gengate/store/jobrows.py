"""Job rows: admission, leases, progress and terminal transitions with their money."""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Table, bindparam, func, select, text, update

from gengate.errors import Conflict, GengateError, InsufficientBalance, QueueFull
from gengate.jobs import EngineOptions, Job, JobStatus, Mode
from gengate.quota import LedgerKind
from gengate.store import keyrows, outbox
from gengate.store.channels import ENDED_CHANNEL, JOBS_CHANNEL, notify
from gengate.store.tables import LIVE_SQL, daily_counters, job_inputs, jobs, ledger, users

_LIVE = (JobStatus.PENDING_QUEUE.value, JobStatus.ON_QUEUE.value)


@dataclass(slots=True)
class Admission:
    """A job ready to be admitted, with its idempotency key and input blobs."""

    job: Job
    idempotency_key: str | None = None
    inputs: list[bytes] = field(default_factory=list)
    #: the most live jobs of the job's product one user may have (None: no such cap)
    product_max_queue: int | None = None


_MODES = {m.value: m for m in Mode}
_STATUSES = {s.value: s for s in JobStatus}


def row_to_job(row: Any) -> Job:
    return Job(
        id=row.id,
        user_id=row.user_id,
        product=row.product,
        action=row.action,
        mode=_MODES[row.mode],
        status=_STATUSES[row.status],
        progress=row.progress,
        prompt=row.prompt,
        quota=row.quota,
        timeout=row.timeout,
        created_at=row.created_at,
        deadline=row.deadline,
        hook_url=row.hook_url,
        get_u_images=bool(row.get_u_images),
        parent_id=row.parent_id,
        params=orjson.loads(row.params),
        result=orjson.loads(row.result),
        message=row.message,
        upstream_id=row.upstream_id,
        provider=row.provider,
        started_at=row.started_at,
        finished_at=row.finished_at,
        account_id=row.account_id,
        slot_mode=row.slot_mode,
        hosted=bool(row.hosted),
        attempts=row.attempts,
        submit_tag=row.submit_tag,
        sends=row.sends,
        key_id=row.key_id,
    )


def _job_values(job: Job, key: str | None) -> dict[str, Any]:
    return {
        "id": job.id,
        "user_id": job.user_id,
        "product": job.product,
        "action": job.action,
        "mode": job.mode.value,
        "status": job.status.value,
        "progress": job.progress,
        "prompt": job.prompt,
        "quota": job.quota,
        "timeout": job.timeout,
        "hook_url": job.hook_url,
        "get_u_images": job.get_u_images,
        "parent_id": job.parent_id,
        "params": orjson.dumps(job.params).decode(),
        "result": "{}",
        "message": "",
        "attempts": 0,
        "sends": 0,
        "deadline": job.deadline,
        "created_at": job.created_at,
        "idempotency_key": key,
        "hosted": job.hosted,
        "key_id": job.key_id,
    }


_GET_JOB = select(jobs).where(jobs.c.id == bindparam("job_id"))
_JobRow = namedtuple("_JobRow", [c.name for c in jobs.c])  # type: ignore[misc]
_RAW_GET_JOB = f"SELECT {', '.join(_JobRow._fields)} FROM jobs WHERE id = ?"


def get_job(conn: Connection, job_id: str) -> Job | None:
    """One job by id: the hottest read (every fetch).

    On SQLite the statement goes straight to the driver, which caches it prepared; the
    SQL expression layer costs more than the lookup itself there.
    """
    if conn.dialect.name == "sqlite":
        raw = conn.connection.driver_connection
        values = raw.execute(_RAW_GET_JOB, (job_id,)).fetchone()  # type: ignore[union-attr]
        return row_to_job(_JobRow._make(values)) if values is not None else None
    row = conn.execute(_GET_JOB, {"job_id": job_id}).first()
    return row_to_job(row) if row is not None else None


def get_jobs(conn: Connection, job_ids: list[str]) -> dict[str, Job]:
    """Several jobs by id, in one query."""
    rows = conn.execute(select(jobs).where(jobs.c.id.in_(job_ids)))
    return {r.id: row_to_job(r) for r in rows}


def _existing_by_key(conn: Connection, items: list[Admission]) -> dict[tuple[int, str], Job]:
    keyed = [(a.job.user_id, a.idempotency_key) for a in items if a.idempotency_key]
    if not keyed:
        return {}
    stmt = select(jobs).where(
        jobs.c.user_id.in_({uid for uid, _ in keyed}),
        jobs.c.idempotency_key.in_({key for _, key in keyed}),
    )
    return {(r.user_id, r.idempotency_key): row_to_job(r) for r in conn.execute(stmt)}


def admit_batch(conn: Connection, items: list[Admission], now: float) -> list[Job | GengateError]:
    """Admit many jobs in one transaction: max_queue, balance and freeze per user, atomically.

    The users' rows are locked (``FOR UPDATE`` on PostgreSQL, the write lock on SQLite), so
    no concurrent admission can overdraw a balance or overrun ``max_queue``.
    """
    user_ids = sorted({a.job.user_id for a in items})
    # per user: [available balance, max_queue, in-flight jobs, newly frozen, newly admitted]
    state = {uid: [balance, max_queue, in_flight, 0, 0]
             for uid, balance, max_queue, in_flight in _lock_users(conn, user_ids)}
    existing = _existing_by_key(conn, items)
    per_product = _live_per_product(conn, items)
    # API keys' spend, counted (and checked against their caps) in this same transaction
    spend = keyrows.SpendCaps(conn, (a.job.key_id for a in items if a.job.key_id), now)
    results: list[Job | GengateError] = []
    new_jobs: list[dict[str, Any]] = []
    freezes: list[dict[str, Any]] = []
    blobs: list[dict[str, Any]] = []
    for item in items:
        job, key = item.job, item.idempotency_key
        if key and (job.user_id, key) in existing:
            first = existing[(job.user_id, key)]
            same = EngineOptions.of(first).request == EngineOptions.of(job).request
            results.append(first if same else Conflict(
                "Idempotency-Key: already used for a different request"))
            continue
        st = state[job.user_id]
        if st[2] >= st[1]:
            results.append(QueueFull(
                f"Insufficient queues for {job.product}: your in-progress jobs reached "
                f"max_queue ({st[1]})"))
            continue
        cap = item.product_max_queue
        live_key = (job.user_id, job.product)
        if cap is not None and per_product.get(live_key, 0) >= cap:
            results.append(QueueFull(
                f"Insufficient queues for {job.product}: your in-progress {job.product} "
                f"jobs reached its max_queue ({cap})"))
            continue
        if st[0] < job.quota:
            results.append(InsufficientBalance())
            continue
        capped = spend.take(job.key_id, int(job.quota))
        if capped is not None:
            results.append(capped)
            continue
        if cap is not None:
            per_product[live_key] = per_product.get(live_key, 0) + 1
        st[0] -= job.quota
        st[2] += 1
        st[3] += job.quota
        st[4] += 1
        if key:
            existing[(job.user_id, key)] = job
        new_jobs.append(_job_values(job, key))
        freezes.append(_ledger_row(job.user_id, job.id, LedgerKind.FREEZE, job.quota, now,
                                   key_id=job.key_id))
        blobs += [{"job_id": job.id, "idx": i, "data": d} for i, d in enumerate(item.inputs)]
        results.append(job)
    if new_jobs:
        insert_many(conn, jobs, new_jobs)
        insert_many(conn, ledger, freezes)
        if blobs:
            insert_many(conn, job_inputs, blobs)
        changed = [(st[3], st[3], st[2], uid) for uid, st in state.items() if st[4]]
        if conn.dialect.name == "sqlite":
            _driver(conn).executemany(_RAW_ADMIT_USER, changed)
        else:
            conn.execute(_ADMIT_USER, [{"uid": uid, "delta": delta, "in_flight": in_flight}
                                       for delta, _, in_flight, uid in changed])
        spend.save(conn)
        notify(conn, JOBS_CHANNEL)
    return results


def _driver(conn: Connection) -> Any:
    driver = conn.connection.driver_connection
    assert driver is not None
    return driver


def _lock_users(conn: Connection, user_ids: list[int]) -> list[Any]:
    """(id, balance, max_queue, in_flight) of the users, locked until the transaction ends
    (``FOR UPDATE`` on PostgreSQL; SQLite's write lock is already held). On SQLite the
    statement goes straight to the driver (see :func:`insert_many`)."""
    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" * len(user_ids))
        return _driver(conn).execute(  # type: ignore[no-any-return]
            "SELECT id, balance, max_queue, in_flight FROM users "
            f"WHERE id IN ({marks}) ORDER BY id", user_ids).fetchall()
    stmt = (
        select(users.c.id, users.c.balance, users.c.max_queue, users.c.in_flight)
        .where(users.c.id.in_(user_ids))
        .order_by(users.c.id)
        .with_for_update()
    )
    return list(conn.execute(stmt))


def _live_per_product(conn: Connection, items: list[Admission]) -> dict[tuple[int, str], int]:
    """Live jobs per (user, product), for the products that have their own cap."""
    capped = {(a.job.user_id, a.job.product) for a in items if a.product_max_queue is not None}
    if not capped:
        return {}
    stmt = (
        select(jobs.c.user_id, jobs.c.product, func.count().label("n"))
        .where(jobs.c.user_id.in_({u for u, _ in capped}),
               jobs.c.product.in_({p for _, p in capped}), jobs.c.status.in_(_LIVE))
        .group_by(jobs.c.user_id, jobs.c.product)
    )
    return {(r.user_id, r.product): int(r.n) for r in conn.execute(stmt)}


def insert_many(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows that all carry the same keys.

    On SQLite this is one ``executemany`` on the driver: the SQL expression layer's
    per-row parameter processing costs more than SQLite's insert itself.
    """
    if conn.dialect.name != "sqlite":
        conn.execute(table.insert(), rows)
        return
    names = tuple(rows[0])
    sql = _INSERTS.get((table.name, names))
    if sql is None:
        marks = ", ".join("?" * len(names))
        sql = _INSERTS[(table.name, names)] = (
            f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})"
        )
    driver = conn.connection.driver_connection
    driver.executemany(sql, [tuple(row[n] for n in names) for row in rows])  # type: ignore


_INSERTS: dict[tuple[str, tuple[str, ...]], str] = {}



_RAW_ADMIT_USER = ("UPDATE users SET balance = balance - ?, freeze_balance = freeze_balance + ?, "
                   "in_flight = ? WHERE id = ?")
_ADMIT_USER = (
    update(users)
    .where(users.c.id == bindparam("uid"))
    .values(
        balance=users.c.balance - bindparam("delta"),
        freeze_balance=users.c.freeze_balance + bindparam("delta"),
        in_flight=bindparam("in_flight"),
    )
)


def _ledger_row(user_id: int, job_id: str | None, kind: LedgerKind, amount: float, now: float,
                note: str = "", key_id: int | None = None) -> dict[str, Any]:
    return {"user_id": user_id, "job_id": job_id, "kind": kind.value, "amount": amount,
            "note": note, "created_at": now, "key_id": key_id}


def job_inputs_of(conn: Connection, job_id: str) -> list[bytes]:
    stmt = select(job_inputs.c.data).where(job_inputs.c.job_id == job_id).order_by(job_inputs.c.idx)
    return [bytes(r.data) for r in conn.execute(stmt)]


def renew(conn: Connection, owner: str, job_ids: list[str], until: float) -> set[str]:
    """Extend the leases ``owner`` still holds; return the ids it still holds."""
    if not job_ids:
        return set()
    stmt = (
        update(jobs)
        .where(jobs.c.id.in_(job_ids), jobs.c.lease_owner == owner,
               jobs.c.status == JobStatus.ON_QUEUE.value)
        .values(lease_expires_at=until)
        .returning(jobs.c.id)
    )
    return {r.id for r in conn.execute(stmt)}


def mark_submitting(conn: Connection, job_id: str, owner: str, tag: str, now: float,
                    lease: float) -> bool:
    """Record, before the call, that a submit with this tag is going upstream: whoever
    holds the job next looks the task up by the tag instead of sending it again.

    Only a lease still running counts (a worker that stalled past it may already have lost
    the job to a claim that has not happened yet), and the record renews it: the send then
    has a whole lease before anyone else can take the job and look for its task."""
    stmt = (
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.lease_owner == owner,
               jobs.c.lease_expires_at > now,
               jobs.c.status == JobStatus.ON_QUEUE.value)
        .values(submit_tag=tag, sends=jobs.c.sends + 1, lease_expires_at=now + lease)
    )
    return conn.execute(stmt).rowcount == 1


def unmark_submitting(conn: Connection, job_id: str, owner: str) -> None:
    """The upstream refused the submit outright: it started nothing, so it does not count."""
    conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.lease_owner == owner,
               jobs.c.submit_tag.is_not(None))
        .values(submit_tag=None, sends=jobs.c.sends - 1)  # marking counted it
    )


def record_upstream(conn: Connection, job_id: str, owner: str, upstream_id: str,
                    provider: str) -> bool:
    stmt = (
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.lease_owner == owner,
               jobs.c.status == JobStatus.ON_QUEUE.value)
        .values(upstream_id=upstream_id, provider=provider, submit_tag=None)
    )
    return conn.execute(stmt).rowcount == 1


def record_progress(conn: Connection, owner: str, items: list[tuple[str, int]], now: float,
                    bodies: outbox.Bodies) -> set[str]:
    """Raise the progress of the jobs ``owner`` holds (``(job id, progress)`` pairs, the
    jobs one poll round woke), one statement per distinct value; notify the hookUrl of each
    raised job that asked for progress events. Returns the ids whose progress rose."""
    by_value: dict[int, list[str]] = {}
    for job_id, progress in items:
        by_value.setdefault(progress, []).append(job_id)
    raised: set[str] = set()
    for progress, job_ids in sorted(by_value.items()):
        stmt = (
            update(jobs)
            .where(jobs.c.id.in_(job_ids), jobs.c.lease_owner == owner,
                   jobs.c.status == JobStatus.ON_QUEUE.value, jobs.c.progress < progress)
            .values(progress=progress)
            .returning(jobs.c.id, jobs.c.hook_url)
        )
        hooked = []
        for row in conn.execute(stmt).all():
            raised.add(row.id)
            if row.hook_url:
                hooked.append(row.id)
        if not hooked:
            continue
        # only jobs with a hookUrl are read whole, to see whether they asked for progress
        for job in get_jobs(conn, hooked).values():
            if EngineOptions.of(job).hook_progress:
                outbox.enqueue(conn, job, "job.progress", now, bodies)
    return raised


def release(conn: Connection, job_id: str, owner: str) -> None:
    """Give a job back to the queue (graceful shutdown), keeping its upstream id."""
    conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.lease_owner == owner,
               jobs.c.status == JobStatus.ON_QUEUE.value)
        .values(lease_owner=None, lease_expires_at=0.0)
    )
    notify(conn, JOBS_CHANNEL)


def release_owned(conn: Connection, owner: str) -> int:
    """Give back every job ``owner`` holds (a node starting again under its own name: its
    previous run died holding them); returns how many."""
    result = conn.execute(
        update(jobs)
        .where(jobs.c.lease_owner == owner, jobs.c.status == JobStatus.ON_QUEUE.value)
        .values(lease_owner=None, lease_expires_at=0.0)
    )
    if result.rowcount:
        notify(conn, JOBS_CHANNEL)
    return int(result.rowcount)


def _end(conn: Connection, job_id: str, owner: str | None, values: dict[str, Any],
         now: float, bodies: outbox.Bodies, *, user_id: int | None = None,
         status: JobStatus | None = None) -> Job | None:
    """End a live job (of ``user_id``, in ``status``, held by ``owner``: when given); its
    webhook is queued in this same transaction."""
    conds = [jobs.c.id == job_id, jobs.c.status.in_(_LIVE)]
    if owner is not None:
        conds.append(jobs.c.lease_owner == owner)
    if user_id is not None:
        conds.append(jobs.c.user_id == user_id)
    if status is not None:
        conds.append(jobs.c.status == status.value)
    row = conn.execute(update(jobs).where(*conds).values(**values).returning(*jobs.c)).first()
    if row is None:
        return None
    job = row_to_job(row)
    outbox.enqueue(conn, job, "job.finished", now, bodies)
    if EngineOptions.of(job).sync:
        notify(conn, ENDED_CHANNEL, job.id)  # wakes the node holding its request
    return job


def succeed(conn: Connection, job_id: str, owner: str | None, result: dict[str, Any],
            now: float, bodies: outbox.Bodies) -> bool:
    """SUCCESS and settle the frozen price, in this one transaction, at most once."""
    job = _end(conn, job_id, owner, {
        "status": JobStatus.SUCCESS.value, "progress": 100, "finished_at": now,
        "result": orjson.dumps(result).decode(), "lease_owner": None,
    }, now, bodies)
    if job is None:
        return False
    # ran on a cheaper slot than asked for (relax fallback): charged that slot's price
    _, charge = job.charged()
    _move_money(conn, job, LedgerKind.SETTLE, int(job.quota), now, charge=charge)
    return True


def fail(conn: Connection, job_id: str, owner: str | None, message: str, now: float,
         bodies: outbox.Bodies, illegal_limit: int | None = None) -> bool:
    """FAILED and refund the frozen price (no refund past the daily illegal-prompt limit)."""
    job = _end(conn, job_id, owner, {
        "status": JobStatus.FAILED.value, "finished_at": now, "message": message,
        "lease_owner": None,
    }, now, bodies)
    if job is None:
        return False
    kind = LedgerKind.REFUND
    if illegal_limit is not None:
        count = bump_counter(conn, job.user_id, "illegal_prompts", now)
        if count > illegal_limit:
            kind = LedgerKind.SETTLE
    _move_money(conn, job, kind, int(job.quota), now)
    return True


def cancel(conn: Connection, job_id: str, user_id: int, status: JobStatus, message: str,
           now: float, bodies: outbox.Bodies) -> Job | None:
    """The owner's cancel: FAILED with ``message`` and the frozen price refunded, its
    webhook queued, all in this one transaction, only while the job is still in
    ``status`` (a job that ended or moved on first is left as it is: None)."""
    job = _end(conn, job_id, None, {
        "status": JobStatus.FAILED.value, "finished_at": now, "message": message,
        "lease_owner": None,
    }, now, bodies, user_id=user_id, status=status)
    if job is None:
        return None
    _move_money(conn, job, LedgerKind.REFUND, int(job.quota), now)
    return job


def _move_money(conn: Connection, job: Job, kind: LedgerKind, amount: int, now: float,
                charge: int | None = None) -> None:
    """Release a job's frozen ``amount``: spent (SETTLE) or returned (REFUND). A settle
    of less than was frozen (``charge``) returns the rest as the job's refund. A refund
    goes back to the submitting key's spend too."""
    user_id, job_id, key_id = job.user_id, job.id, job.key_id
    rows = [_ledger_row(user_id, job_id, kind, amount, now, key_id=key_id)]
    refund = amount if kind is LedgerKind.REFUND else 0
    if kind is LedgerKind.SETTLE and charge is not None and charge < amount:
        rows = [_ledger_row(user_id, job_id, kind, charge, now, key_id=key_id),
                _ledger_row(user_id, job_id, LedgerKind.REFUND, amount - charge, now,
                            "ran in relax mode", key_id=key_id)]
        refund = amount - charge
    conn.execute(ledger.insert(), rows)
    conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(
            freeze_balance=users.c.freeze_balance - amount,
            balance=users.c.balance + refund,
            in_flight=users.c.in_flight - 1,
        )
    )
    # rows locked in the order every transaction takes them: users, then keys
    keyrows.give_back(conn, key_id, refund, job.created_at, now)


def utc_day(now: float) -> str:
    import time

    return time.strftime("%Y-%m-%d", time.gmtime(now))


def bump_counter(conn: Connection, user_id: int, name: str, now: float) -> int:
    day = utc_day(now)
    key = {"user_id": user_id, "day": day, "name": name}
    stmt = update(daily_counters).where(
        daily_counters.c.user_id == user_id, daily_counters.c.day == day,
        daily_counters.c.name == name,
    ).values(value=daily_counters.c.value + 1).returning(daily_counters.c.value)
    row = conn.execute(stmt).first()
    if row is not None:
        return int(row.value)
    conn.execute(daily_counters.insert(), [{**key, "value": 1}])
    return 1


def read_counter(conn: Connection, user_id: int, name: str, now: float) -> int:
    stmt = select(daily_counters.c.value).where(
        daily_counters.c.user_id == user_id, daily_counters.c.day == utc_day(now),
        daily_counters.c.name == name,
    )
    return int(conn.execute(stmt).scalar() or 0)


def overdue(conn: Connection, now: float, limit: int = 100) -> list[str]:
    """Live jobs past their deadline."""
    stmt = (
        select(jobs.c.id)
        .where(text(LIVE_SQL), jobs.c.deadline <= now)
        .limit(limit)
    )
    return [r.id for r in conn.execute(stmt)]


def list_jobs(conn: Connection, user_id: int, status: str | list[str] | None, page: int,
              limit: int, ascending: bool, product: str | None = None) -> list[Job]:
    stmt = select(jobs).where(jobs.c.user_id == user_id)
    if product:
        stmt = stmt.where(jobs.c.product == product)
    if isinstance(status, list):
        stmt = stmt.where(jobs.c.status.in_(status))
    elif status:
        stmt = stmt.where(jobs.c.status == status)
    order = jobs.c.created_at.asc() if ascending else jobs.c.created_at.desc()
    stmt = stmt.order_by(order, jobs.c.id).offset((page - 1) * limit).limit(limit)
    return [row_to_job(r) for r in conn.execute(stmt)]


def mode_stats(conn: Connection, since: float) -> list[Any]:
    """Per product and mode: successes, failures, mean seconds from submit to finish, in
    a window."""
    duration = jobs.c.finished_at - jobs.c.created_at
    stmt = (
        select(
            jobs.c.product,
            jobs.c.mode,
            jobs.c.status,
            func.count().label("n"),
            func.avg(duration).label("avg"),
        )
        .where(jobs.c.created_at >= since, jobs.c.status.in_(
            [JobStatus.SUCCESS.value, JobStatus.FAILED.value]))
        .group_by(jobs.c.product, jobs.c.mode, jobs.c.status)
    )
    return list(conn.execute(stmt))


def queue_depth(conn: Connection) -> list[Any]:
    stmt = (
        select(jobs.c.product, jobs.c.mode, jobs.c.status, func.count().label("n"))
        .where(jobs.c.status.in_(_LIVE))
        .group_by(jobs.c.product, jobs.c.mode, jobs.c.status)
    )
    return list(conn.execute(stmt))
