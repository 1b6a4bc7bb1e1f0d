"""Settings: one object, built by the entry points at start-up, never at import.

Every field can be set from the environment with the ``GENGATE_`` prefix, e.g.
``GENGATE_DATABASE_URL`` or ``GENGATE_LOCAL_DELAY``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gengate.quota import DEFAULT_PRICES

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Everything gengate can be configured with."""

    model_config = SettingsConfigDict(env_prefix="GENGATE_", extra="ignore")

    # where things live
    data_dir: Path = Field(Path("./data"), description="Directory for the SQLite file and results")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: a SQLite file in the data directory"
    )
    public_url: str | None = Field(
        None, description="Base URL clients reach gengate at; default http://HOST:PORT"
    )
    host: str = "127.0.0.1"
    port: int = 8000

    # security
    admin_key: str | None = Field(None, description="Bearer key for /admin; unset disables /admin")
    max_body_bytes: int = Field(16 * 1024 * 1024, description="Largest request body accepted")

    # users
    default_max_queue: int = 10
    default_balance: float = 0

    # prices: "product:action:mode" -> quota; merged over the defaults
    prices: dict[str, float] = Field(default_factory=dict)

    # worker
    worker_concurrency: int = Field(8, ge=1, description="Jobs one worker runs at once")
    lease_seconds: float = Field(30.0, gt=0, description="How long a claim holds a job")
    poll_interval: float = Field(1.0, gt=0, description="Fallback polling of the queue, seconds")
    upstream_poll_interval: float = Field(1.0, gt=0, description="Polling of upstream tasks")

    # the built-in local provider
    local_delay: float = Field(0.0, ge=0, description="Seconds the local provider takes per job")
    local_steps: int = Field(4, ge=1, description="Progress steps the local provider reports")
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

    # prompts
    banned_words_file: Path | None = None
    illegal_prompt_daily_limit: int = 30

    # status page
    status_window_seconds: int = 3600

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gengate.db').resolve()}"

    def resolved_public_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def price_table(self) -> dict[str, float]:
        return {**DEFAULT_PRICES, **self.prices}
