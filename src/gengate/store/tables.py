"""Table definitions. Times are epoch seconds (float); money is integer milli-quota."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

#: the live jobs, and the running ones, as partial indexes and the queries that use them
#: spell them: written out, not bound, so that both databases' planners see the match
LIVE_SQL = "status IN ('PENDING_QUEUE', 'ON_QUEUE')"
RUNNING_SQL = "status = 'ON_QUEUE'"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("balance", BigInteger, nullable=False, default=0),
    Column("freeze_balance", BigInteger, nullable=False, default=0),
    Column("max_queue", Integer, nullable=False),
    Column("in_flight", Integer, nullable=False, default=0),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", Float, nullable=False),
    # Standard Webhooks signing secret ("whsec_..."), made on first use, sealed with the
    # deployment's secret key (gengate.credentials)
    Column("webhook_secret", String(512), nullable=True),
    # request limits of this user's keys; NULL: the deployment's defaults
    Column("rate_per_second", Integer, nullable=True),
    Column("rate_per_minute", Integer, nullable=True),
    # the console's sign-in password (argon2id encoded hash); None: API-key sign-in only
    Column("password_hash", String(255), nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    # limits (docs/keys.md); NULL: no limit. Lists are JSON arrays.
    Column("name", String(64), nullable=False, default="", server_default=""),
    Column("products", Text, nullable=True),
    Column("models", Text, nullable=True),
    Column("cidrs", Text, nullable=True),
    Column("expires_at", Float, nullable=True),
    Column("rate_per_second", Integer, nullable=True),
    Column("rate_per_minute", Integer, nullable=True),
    # spend caps in milli-quota, and what the key spent in the current period, counted in
    # the transaction that freezes the price (refunds give it back)
    Column("cap_day", BigInteger, nullable=True),
    Column("cap_month", BigInteger, nullable=True),
    Column("cap_total", BigInteger, nullable=True),
    Column("spent_day", BigInteger, nullable=False, default=0, server_default="0"),
    Column("spent_day_on", String(10), nullable=False, default="", server_default=""),
    Column("spent_month", BigInteger, nullable=False, default=0, server_default="0"),
    Column("spent_month_on", String(7), nullable=False, default="", server_default=""),
    Column("spent_total", BigInteger, nullable=False, default=0, server_default="0"),
)

#: one row: bumped by every change to a key (revoke, rotate, limits) or a user's standing;
#: API processes poll it (and on PostgreSQL also LISTEN) to drop their cached keys
key_state = Table(
    "key_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False, default=0),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("product", String(32), nullable=False),
    Column("action", String(32), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("progress", Integer, nullable=False, default=0),
    Column("prompt", Text, nullable=False, default=""),
    Column("quota", BigInteger, nullable=False),
    Column("timeout", Integer, nullable=False),
    Column("hook_url", Text, nullable=True),
    Column("get_u_images", Boolean, nullable=False, default=False),
    Column("parent_id", String(36), nullable=True),
    Column("params", Text, nullable=False, default="{}"),
    Column("result", Text, nullable=False, default="{}"),
    Column("message", Text, nullable=False, default=""),
    Column("upstream_id", String(128), nullable=True),
    Column("provider", String(64), nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("deadline", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("idempotency_key", String(255), nullable=True),
    # the upstream account running the job, and the mode whose slot it takes there
    Column("account_id", Integer, nullable=True),
    Column("slot_mode", String(16), nullable=True),
    # submitted through /hold: runs only on the user's own accounts
    Column("hosted", Boolean, nullable=False, default=False, server_default="0"),
    # the retention pass: when the result files were deleted, and which node is deleting them
    Column("result_expired_at", Float, nullable=True),
    Column("result_claim_owner", String(64), nullable=True),
    Column("result_claim_until", Float, nullable=True),
    # the tag of a submit sent upstream whose task id is not recorded yet ("submitting"),
    # and how many submits may have started an upstream task for this job
    Column("submit_tag", String(64), nullable=True),
    Column("sends", Integer, nullable=False, default=0, server_default="0"),
    # the API key that submitted it (NULL: before keys were recorded)
    Column("key_id", Integer, nullable=True),
    UniqueConstraint("user_id", "idempotency_key", name="uq_jobs_user_idempotency"),
    Index("ix_jobs_status_created", "status", "created_at"),
    Index("ix_jobs_user_created", "user_id", "created_at"),
    # fetch-list of one product and status (also a status the user has few or none of),
    # and the live jobs per user and product that a product's own max_queue counts
    Index("ix_jobs_user_product_status", "user_id", "product", "status", "created_at"),
    # the operator's newest jobs across users
    Index("ix_jobs_created", "created_at"),
    # the worker's passes over thousands of jobs in flight: those past their deadline, and
    # running ones whose lease lapsed, found without reading the others
    Index("ix_jobs_live_deadline", "status", "deadline",
          postgresql_where=text(LIVE_SQL), sqlite_where=text(LIVE_SQL)),
    Index("ix_jobs_running_lease", "status", "lease_expires_at",
          postgresql_where=text(RUNNING_SQL), sqlite_where=text(RUNNING_SQL)),
    Index("ix_jobs_account_status", "account_id", "status"),
    # the retention pass's scan: results not expired yet, oldest first
    Index("ix_jobs_results_live", "status", "finished_at",
          postgresql_where=text("result_expired_at IS NULL"),
          sqlite_where=text("result_expired_at IS NULL")),
)

#: finished jobs per UTC day (days since the epoch), product and status, written once for
#: each day whose jobs have all ended: the status page's 90 days read these instead of the
#: jobs. A row with an empty product and status marks a day as written (it may have none).
job_days = Table(
    "job_days",
    metadata,
    Column("day", Integer, primary_key=True, autoincrement=False),
    Column("product", String(32), primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("jobs", Integer, nullable=False),
    # the sum of the jobs' seconds from submit to end (their mean: seconds / jobs)
    Column("seconds", Float, nullable=False),
)

job_inputs = Table(
    "job_inputs",
    metadata,
    Column("job_id", String(36), ForeignKey("jobs.id"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("job_id", String(36), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("key_id", Integer, nullable=True),
    # a second freeze, settle or refund of one job is impossible
    UniqueConstraint("job_id", "kind", name="uq_ledger_job_kind"),
)

daily_counters = Table(
    "daily_counters",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("name", String(32), primary_key=True),
    Column("value", Integer, nullable=False, default=0),
)

#: the webhook outbox: one row per notification, written in the job's own transaction
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),  # the webhook-id header, stable across attempts
    Column("job_id", String(36), nullable=False, index=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("event", String(32), nullable=False),
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_user_created", "user_id", "created_at"),
    Index("ix_webhook_deliveries_finished", "finished_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String(40), ForeignKey("webhook_deliveries.id"), nullable=False,
           index=True),
    Column("attempt", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
)

#: one compact row per LLM relay call; rows older than the retention setting are deleted
llm_usage = Table(
    "llm_usage",
    metadata,
    Column("id", String(36), primary_key=True),  # the request id, also the ledger's job_id
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("model", String(128), nullable=False),
    Column("account", String(64), nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cache_write_tokens", Integer, nullable=False),
    Column("cache_read_tokens", Integer, nullable=False),
    Column("cost", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("key_id", Integer, nullable=True),
    Index("ix_llm_usage_user_started", "user_id", "started_at"),
    Index("ix_llm_usage_started", "started_at"),
)

#: upstream accounts: the operator's pool (owner_id 0) and users' hosted accounts
upstream_accounts = Table(
    "upstream_accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner_id", Integer, nullable=False, default=0),
    Column("name", String(64), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("base_url", Text, nullable=True),
    # sealed with the deployment's secret key; never returned by the API
    Column("credentials", Text, nullable=True),
    Column("options", Text, nullable=False, default="{}"),
    Column("slots", Text, nullable=False, default="{}"),  # mode -> concurrent jobs
    # JSON list of the products it runs; "*": every product (the local renderer)
    Column("products", Text, nullable=False, default='["midjourney"]',
           server_default='["midjourney"]'),
    Column("priority", Integer, nullable=False, default=0),
    Column("weight", Integer, nullable=False, default=1),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("state", String(16), nullable=False, default="healthy"),
    Column("state_reason", Text, nullable=False, default=""),
    Column("state_until", Float, nullable=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("next_probe_at", Float, nullable=False, default=0.0),
    Column("daily_cap", Integer, nullable=True),
    Column("day", String(10), nullable=False, default=""),
    Column("day_count", Integer, nullable=False, default=0),
    Column("min_gap", Float, nullable=False, default=0.0),
    Column("gap_jitter", Float, nullable=False, default=0.0),
    Column("next_submit_at", Float, nullable=False, default=0.0),
    Column("work_hours", String(200), nullable=False, default=""),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("deleted_at", Float, nullable=True),
    UniqueConstraint("owner_id", "name", name="uq_upstream_accounts_owner_name"),
)

#: every health change of an account, for operators and owners to read
account_events = Table(
    "account_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("upstream_accounts.id"), nullable=False),
    Column("at", Float, nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Index("ix_account_events_account_at", "account_id", "at"),
)


# incidents and maintenance windows on the public status page (docs/console.md)
incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # incident, maintenance
    Column("title", String(200), nullable=False),
    Column("products", Text, nullable=False, default="[]"),  # JSON list of product names
    Column("state", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("resolved_at", Float, nullable=True),
)

incident_updates = Table(
    "incident_updates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

# prices the operator set (console or PUT /admin/prices), over the built-in table and
# GENGATE_PRICES / GENGATE_HOSTING_PRICES; ``tier``: ``main`` or ``hosting`` (docs/quota.md)
price_overrides = Table(
    "price_overrides",
    metadata,
    Column("tier", String(16), primary_key=True),
    Column("key", String(200), primary_key=True),  # product:action:mode
    Column("price", BigInteger, nullable=False),  # milli-quota
    Column("updated_at", Float, nullable=False),
)

# console sign-in attempts per client address, counted by every node alike
# (without GENGATE_REDIS_URL; docs/console.md)
signin_attempts = Table(
    "signin_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("address", String(64), nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_signin_attempts_address_at", "address", "at"),
)
