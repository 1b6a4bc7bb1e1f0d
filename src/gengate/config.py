"""Settings: one object, built by the entry points at start-up, never at import.

Every field can be set from the environment with the ``GENGATE_`` prefix, e.g.
``GENGATE_DATABASE_URL`` or ``GENGATE_LOCAL_DELAY``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Everything gengate can be configured with."""

    model_config = SettingsConfigDict(env_prefix="GENGATE_", extra="ignore")

    # where things live
    data_dir: Path = Field(Path("./data"), description="Directory for the SQLite file and results")
    database_url: str | None = Field(
        None, repr=False, description="SQLAlchemy URL; default: a SQLite file in the data directory"
    )
    public_url: str | None = Field(
        None, description="Base URL clients reach gengate at; default http://HOST:PORT"
    )
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Level of gengate's own log lines (serve, worker, dispatch)"
    )
    node_id: str | None = Field(
        None, min_length=1, max_length=48, pattern=r"^[A-Za-z0-9._-]+$",
        description="This process's identity in job leases; default: one kept in the data "
        "directory, reused by the next process there after this one ends",
    )

    # PostgreSQL connections per process (unset: by the process's role, see pool_sizes)
    db_pool_size: int | None = Field(
        None, ge=1, description="Connections each process keeps in its pool"
    )
    db_max_overflow: int | None = Field(
        None, ge=0, description="Connections a process may open beyond the pool under load"
    )

    # security
    # secrets and URLs that may carry passwords stay out of reprs (and so out of logs)
    admin_key: str | None = Field(
        None, repr=False, description="Bearer key for /admin; unset disables /admin"
    )
    max_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Largest request body of a route that takes "
        "images (blend, describe, inpaint) and of an LLM request")
    max_json_body_bytes: int = Field(
        128 * 1024, ge=1024, description="Largest request body of every other route")
    image_requests: int = Field(
        2, ge=1, description="Requests with images (blend, describe, inpaint) read and "
        "decoded at once; the others wait their turn before their body is read")
    image_body_seconds: float = Field(
        60.0, gt=0, description="Seconds a request with images has to send its body once "
        "its turn came (408 past that)")
    metrics_token: str | None = Field(
        None, repr=False, description="Bearer token /metrics asks for; unset: /metrics is open"
    )
    secret_key: str | None = Field(
        None, repr=False, description="Key(s) sealing upstream credentials at rest, "
        "comma-separated (the first seals, all open); default: a key file in the data directory"
    )

    # rate limits (0 = none); shared across nodes through Redis when redis_url is set
    redis_url: str | None = Field(
        None, repr=False, description="redis://host:port/db for shared limits"
    )
    rate_per_second: int = Field(50, ge=0, description="Requests per second per API key")
    rate_per_minute: int = Field(1200, ge=0, description="Requests per minute per API key")
    ip_rate_per_second: int = Field(
        20, ge=0, description="Requests per second per client address without a valid key"
    )
    admin_failures_per_minute: int = Field(
        10, ge=0, description="Failed /admin sign-ins (wrong admin key) per minute per client "
        "address before it gets 429; 0 = no limit"
    )

    # API keys (docs/keys.md)
    trusted_proxies: str = Field(
        "", description="Comma-separated CIDRs of reverse proxies whose X-Forwarded-For is "
        "believed (for keys limited to addresses, and per-address limits); empty: none"
    )
    key_poll_interval: float = Field(
        0.25, gt=0, le=1.0,
        description="Seconds between checks for revoked or changed keys (each process)"
    )

    # users
    default_max_queue: int = 10
    max_queue_per_product: dict[str, int] = Field(
        default_factory=dict, description="Per product: the most in-progress jobs of it one "
        "user may have (499 past it), e.g. {\"flux\": 5}; a user's max_queue still bounds "
        "all products together")

    # prices: "product:action:variant" -> quota; merged over the products' defaults
    prices: dict[str, float] = Field(default_factory=dict)
    hosting_prices: dict[str, float] = Field(
        default_factory=dict, description="Prices of jobs run on users' own accounts (/hold), "
        "same keys as prices; merged over the hosting defaults"
    )

    # upstream accounts
    local_account: bool = Field(
        True, description="Keep an operator account named `local` for the built-in renderer"
    )
    local_slots: int = Field(64, ge=1, description="Concurrent jobs per mode on `local`")
    account_probe_interval: float = Field(
        60.0, gt=0, description="Seconds between checks of a flagged account"
    )
    max_attempts: int = Field(
        5, ge=1, description="Upstream attempts per job (failover to other accounts included)"
    )
    max_resends: int = Field(
        2, ge=0, description="Times one job may be sent upstream again after a task that may "
        "have started there (lost by the upstream, failed for the account's sake, or a submit "
        "whose answer never came and that cannot be looked up)"
    )
    hosting_max_accounts: int = Field(
        20, ge=0, description="Accounts one user may register for hosting (/hold)"
    )
    hosting_allow: str = Field(
        "", description="Comma-separated hosts and CIDR ranges users' own accounts (/hold) may "
        "point at although they are not public"
    )

    # worker
    worker_concurrency: int = Field(8, ge=1, description="Jobs one worker runs at once")
    lease_seconds: float = Field(30.0, gt=0, description="How long a claim holds a job")
    poll_interval: float = Field(1.0, gt=0, description="Fallback polling of the queue, seconds")
    upstream_poll_interval: float = Field(1.0, gt=0, description="Polling of upstream tasks")
    upstream_timeout: float = Field(
        30.0, gt=0, description="Seconds one request to an upstream account may take"
    )
    upstream_notify_url: str | None = Field(
        None, description="Base URL at which upstream midjourney-proxies can reach this "
        "gateway: their submits then carry a notifyHook, and a task's change is polled at "
        "once instead of at the next round (docs/accounts.md); unset: polling only"
    )
    sync_timeout: float = Field(
        300.0, gt=0, description="Seconds a synchronous route (Gemini image, OpenAI images) "
        "holds the request before answering 504 with the jobId; the job goes on"
    )

    # the built-in local provider
    local_delay: float = Field(0.0, ge=0, description="Seconds the local provider takes per job")
    local_steps: int = Field(4, ge=1, description="Progress steps the local provider reports")
    local_scale: float = Field(
        1.0, gt=0, le=1, description="Size of rendered grids relative to the normal size"
    )
    local_fail_marker: str | None = Field(
        None, description="Prompts containing this text fail upstream (for testing)"
    )
    local_fail_message: str = Field(
        "[Internal error] Something went wrong: the local provider was told to fail",
        description="The failure message of prompts with the fail marker",
    )
    local_hang_marker: str | None = Field(
        None, description="Prompts containing this text never finish upstream (for testing)"
    )

    # webhooks
    webhook_allow: str = Field(
        "", description="Comma-separated hosts and CIDR ranges webhooks may reach although "
        "they are not public (e.g. 127.0.0.1,10.0.0.0/8)"
    )
    webhook_attempts: int = Field(3, ge=1, description="Attempts per notification")
    webhook_backoff: float = Field(5.0, ge=0, description="Seconds before the first retry")
    webhook_backoff_factor: float = Field(4.0, ge=1, description="Growth of each next wait")
    webhook_backoff_max: float = Field(3600.0, ge=0, description="Longest wait between tries")
    webhook_timeout: float = Field(10.0, gt=0, description="Seconds one attempt may take")
    webhook_concurrency: int = Field(16, ge=1, description="Deliveries in flight per process")
    webhook_retention_days: float = Field(
        30.0, gt=0, description="Days the delivery log keeps finished deliveries"
    )

    # result storage: local disk by default, an S3-compatible object store when storage_url
    # is set
    storage_url: str | None = Field(
        None, description="S3-compatible store for result files: "
        "http(s)://endpoint[:port]/bucket[/prefix] (path style) or s3://bucket[/prefix] "
        "(AWS); unset keeps results in the data directory"
    )
    storage_access_key: str | None = Field(None, repr=False, description="Access key id")
    storage_secret_key: str | None = Field(None, repr=False, description="Secret access key")
    storage_region: str = Field("us-east-1", description="Region of the bucket (R2: auto)")
    storage_serve: Literal["proxy", "redirect", "public"] = Field(
        "proxy", description="How result URLs reach the object store: gengate's /cdn streams "
        "the object (proxy) or redirects to a presigned URL (redirect), or the URLs point at "
        "storage_public_url (public)"
    )
    storage_public_url: str | None = Field(
        None, description="Public or CDN base URL of the bucket (with storage_serve=public)"
    )
    storage_presign_seconds: int = Field(
        300, ge=1, le=604800, description="Lifetime of a presigned URL (redirect mode)"
    )
    result_retention_days: float = Field(
        0.0, ge=0, description="Days result files are kept after their job ends; 0 = forever"
    )
    result_retention: dict[str, float] = Field(
        default_factory=dict, description="Per product name: days its result files are kept "
        "(0 = forever); products not listed use result_retention_days"
    )
    result_retention_interval: float = Field(
        3600.0, gt=0, description="Seconds between two retention passes of a worker"
    )

    # prompts
    banned_words_file: Path | None = None
    illegal_prompt_daily_limit: int = 30

    # status page
    status_window_seconds: int = 3600

    # LLM relay (/v1/messages, /v1/chat/completions)
    llm_accounts: list[dict[str, Any]] = Field(
        default_factory=list, repr=False,
        description="LLM upstream accounts, JSON list of objects with "
        "name, kind (anthropic|openai), base_url, api_key, models, priority, aliases",
    )
    llm_prices_file: str | None = Field(
        None, description="JSON file of LLM prices replacing the shipped list of the "
        "providers' public prices (same format: gengate/data/llm_prices.json)"
    )
    llm_prices: dict[str, dict[str, Any] | None] = Field(
        default_factory=dict, description="model pattern -> quota per million tokens for "
        "input, output, cache_write, cache_write_1h, cache_read (and long_context), merged "
        "over the price file per field; null removes a pattern"
    )
    llm_usage_retention_days: float = Field(90, gt=0, description="Days usage rows are kept")
    llm_retries: int = Field(1, ge=0, description="Retries per account before failing over")
    llm_cooldown_seconds: float = Field(
        10.0, ge=0, description="Cooldown after 429/529 without Retry-After or repeated failure"
    )
    llm_connect_timeout: float = Field(10.0, gt=0, description="Seconds to connect upstream")
    llm_read_timeout: float = Field(600.0, gt=0, description="Seconds between upstream bytes")
    llm_default_max_tokens: int = Field(
        8192, ge=1, description="Output tokens held for calls that set no max_tokens"
    )

    @field_validator("result_retention")
    @classmethod
    def _no_negative_days(cls, value: dict[str, float]) -> dict[str, float]:
        bad = sorted(name for name, days in value.items() if days < 0)
        if bad:
            raise ValueError(f"retention days must be 0 or more: {', '.join(bad)}")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("public_url", "storage_public_url", "upstream_notify_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gengate.db').resolve()}"

    def pool_sizes(self, *, api: bool, worker: bool) -> tuple[int, int]:
        """PostgreSQL pool size and overflow of a process (docs/deploy.md has the sums): a
        process with the API answers many requests at once, but group commit and batched
        lookups make them share transactions; a worker-only process holds a connection only
        for the moment of each job's or delivery's change; the settings override."""
        size, overflow = (5, 5) if api else (3, 3)
        if not api and not worker:
            size, overflow = 1, 1  # an admin command
        size = self.db_pool_size if self.db_pool_size is not None else size
        overflow = self.db_max_overflow if self.db_max_overflow is not None else overflow
        return size, overflow

    def resolved_public_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def price_table(self, defaults: dict[str, float]) -> dict[str, float]:
        """The products' default prices with this deployment's entries over them."""
        return {**defaults, **self.prices}

    def hosting_price_table(self, defaults: dict[str, float]) -> dict[str, float]:
        return {**defaults, **self.hosting_prices}
