"""Shared fixtures: a clean environment, settings in a temporary directory, and real
services (PostgreSQL, Redis) that skip loudly where absent and fail under CI=true."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from gengate.config import Settings

CI = os.environ.get("CI", "").lower() == "true"
ADMIN_KEY = "test-admin-key"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def _no_unhandled_task_errors() -> Iterator[None]:
    """Fail a test during which asyncio reported an error nobody handled: "Task exception
    was never retrieved", "Future exception was never retrieved", an exception in a
    callback. (Warnings already fail tests: pyproject's filterwarnings.)"""
    collect = _Collect()
    logger = logging.getLogger("asyncio")
    logger.addHandler(collect)
    try:
        yield
    finally:
        logger.removeHandler(collect)
    if collect.records:
        pytest.fail("asyncio reported unhandled errors:\n" + "\n".join(
            f"{r.getMessage()} {r.exc_info[1]!r}" if r.exc_info else r.getMessage()
            for r in collect.records))


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GENGATE_") and not name.startswith("GENGATE_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # tests poll fetch fast; the rate-limit tests set their own limits
    return Settings(data_dir=tmp_path / "data", admin_key=ADMIN_KEY, local_delay=0.0,
                    poll_interval=0.2, upstream_poll_interval=0.05, rate_per_second=0,
                    rate_per_minute=0)


def need_service(what: str, reason: str) -> None:
    """Skip loudly, or fail under CI=true, when a real service is missing."""
    message = f"{what} is not reachable: {reason}"
    if CI:
        pytest.fail(f"{message} (CI=true requires it)")
    pytest.skip(f"SKIPPED LOUDLY: {message}")


def postgres_url() -> str:
    return os.environ.get("GENGATE_TEST_POSTGRES_URL", DEFAULT_PG)


DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def redis_url() -> str:
    return os.environ.get("GENGATE_TEST_REDIS_URL", DEFAULT_REDIS)


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    async with fresh_postgres() as url:
        yield url


@asynccontextmanager
async def fresh_postgres() -> AsyncIterator[str]:
    """Create an empty database (skip loudly, or fail under CI, without PostgreSQL)."""
    base = postgres_url()
    name = f"gengate_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(base.replace("postgresql://", "postgres://"), timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        need_service("PostgreSQL", f"{base}: {exc}")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield base.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
