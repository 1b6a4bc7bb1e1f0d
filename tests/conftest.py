"""Shared fixtures: a clean environment, settings in a temporary directory, and real
services (PostgreSQL, Redis) that skip loudly where absent and fail under CI=true."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database at the schema's head, made once for the session: a test's
    gateway starts from a copy of it instead of running every migration again."""
    from gengate.store import Store

    path = tmp_path_factory.mktemp("template") / "gengate.db"

    async def make() -> None:
        store = Store.open(f"sqlite:///{path}")
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(make())
    return path


def _settings(data_dir: Path) -> Settings:
    # tests poll fetch fast; the rate-limit tests set their own limits
    return Settings(data_dir=data_dir, admin_key=ADMIN_KEY, local_delay=0.0,
                    poll_interval=0.2, upstream_poll_interval=0.05, rate_per_second=0,
                    rate_per_minute=0)


@pytest.fixture
def settings(tmp_path: Path, migrated_sqlite: Path) -> Settings:
    """Settings in the test's own data directory, its database already migrated."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    shutil.copyfile(migrated_sqlite, data / "gengate.db")
    (data / "gengate.db").chmod(0o600)
    return _settings(data)


@pytest.fixture
def fresh_settings(tmp_path: Path) -> Settings:
    """Settings whose data directory does not exist yet: gengate creates all of it."""
    return _settings(tmp_path / "data")


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


async def live_redis_url() -> str:
    """The test Redis's URL once it answers a ping; skips loudly (fails under CI=true)
    when it does not."""
    from gengate.ratelimit import Limits, RateLimiter

    url = redis_url()
    try:
        reachable = await RateLimiter(url, Limits(), 0).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no usable Redis
        reachable, url = False, f"{url}: {exc}"
    if not reachable:
        need_service("Redis", url)
    return url


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test, with gengate's schema at the newest
    migration (what every gengate process makes at start), dropped afterwards."""
    async with fresh_postgres(migrated=True) as url:
        yield url


@asynccontextmanager
async def fresh_postgres(migrated: bool = False) -> AsyncIterator[str]:
    """Create an empty database, or with ``migrated`` one with gengate's schema at the
    newest migration, copied from a template database (skip loudly, or fail under CI,
    without PostgreSQL)."""
    base = postgres_url()
    name = f"gengate_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(_dsn(base), timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        need_service("PostgreSQL", f"{base}: {exc}")
    try:
        template = f' TEMPLATE "{await _schema_template(admin, base)}"' if migrated else ""
        await admin.execute(f'CREATE DATABASE "{name}"{template}')
        yield _on(base, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _dsn(url: str) -> str:
    return url.replace("postgresql://", "postgres://")


def _on(base: str, name: str) -> str:
    return base.rsplit("/", 1)[0] + f"/{name}"


#: the template of this session (created or found once)
_templates: dict[str, str] = {}
#: advisory lock held while a template is made, so parallel runs make each one once
_TEMPLATE_LOCK = 7_243_777


async def _schema_template(admin: asyncpg.Connection, base: str) -> str:
    """A database with the schema of these migrations, named after their contents: made
    once (by whichever run gets there first, shared by runs side by side), then copied by
    ``CREATE DATABASE ... TEMPLATE``, which costs a fraction of running the migrations."""
    if base in _templates:
        return _templates[base]
    from gengate.store.migrate import MIGRATIONS

    digest = hashlib.sha256()
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    name = f"gengate_template_{digest.hexdigest()[:16]}"
    await admin.execute("SELECT pg_advisory_lock($1)", _TEMPLATE_LOCK)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            draft = f"{name}_{uuid.uuid4().hex[:6]}"
            await admin.execute(f'CREATE DATABASE "{draft}"')
            try:
                from gengate.store import Store

                store = Store.open(_on(base, draft))
                try:
                    await store.migrate()
                finally:
                    await store.close()
                await admin.execute(f'ALTER DATABASE "{draft}" RENAME TO "{name}"')
            except BaseException:
                await admin.execute(f'DROP DATABASE IF EXISTS "{draft}" WITH (FORCE)')
                raise
    finally:
        await admin.execute("SELECT pg_advisory_unlock($1)", _TEMPLATE_LOCK)
    _templates[base] = name
    return name



@dataclass(frozen=True)
class S3Bucket:
    """An empty bucket on the tests' S3-compatible server (moto, over real HTTP)."""

    endpoint: str
    name: str
    client: Any  # a boto3 S3 client, for what the tests check behind gengate's back

    @property
    def url(self) -> str:
        return f"{self.endpoint}/{self.name}"

    def settings(self, serve: str = "proxy") -> dict[str, Any]:
        """The storage settings of a gengate that keeps its results in this bucket."""
        return {"storage_url": self.url, "storage_access_key": S3_KEY,
                "storage_secret_key": S3_SECRET, "storage_serve": serve,
                "storage_public_url": self.url if serve == "public" else None}

    def env(self, serve: str = "proxy") -> dict[str, str]:
        return {f"GENGATE_{k.upper()}": str(v) for k, v in self.settings(serve).items()
                if v is not None}

    def keys(self) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=self.name)
        return sorted(o["Key"] for o in listing.get("Contents", []))

    def make_public(self) -> None:
        self.client.put_bucket_policy(Bucket=self.name, Policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{self.name}/*"}]}))


S3_KEY, S3_SECRET = "gengate-test", "gengate-test-secret"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free port of this machine, for the whole session."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request else
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> S3Bucket:
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id=S3_KEY,
                          aws_secret_access_key=S3_SECRET, region_name="us-east-1")
    name = f"results-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return S3Bucket(s3_endpoint, name, client)
