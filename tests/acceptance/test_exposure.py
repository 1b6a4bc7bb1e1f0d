"""What a bystander can see: /metrics behind a token when one is set, security headers on
the status page, owner-only data files, and webhook signing secrets sealed at rest."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gengate.config import Settings
from gengate.testing import serve_gateway


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask (files readable by everyone) unless gengate says otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


async def test_metrics_can_be_closed_with_a_token(settings: Settings) -> None:
    async with serve_gateway(settings.model_copy(update={"metrics_token": "m-token"})) as gw:
        anonymous = await gw.http.get("/metrics")
        assert anonymous.status_code == 401 and anonymous.json()["status"] == "FAILED"
        assert "local" not in anonymous.text
        wrong = await gw.http.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        allowed = await gw.http.get("/metrics", headers={"Authorization": "Bearer m-token"})
        assert allowed.status_code == 200
        assert 'gengate_account_slots{account="local",mode="fast"}' in allowed.text


async def test_metrics_stay_open_without_a_token(settings: Settings) -> None:
    async with serve_gateway(settings) as gw:
        assert (await gw.http.get("/metrics")).status_code == 200


async def test_the_status_page_sends_security_headers(settings: Settings) -> None:
    async with serve_gateway(settings) as gw:
        page = await gw.http.get("/status")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp  # no script at all
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"


async def test_data_files_are_owner_only(fresh_settings: Settings, open_umask: None) -> None:
    settings = fresh_settings
    async with serve_gateway(settings) as gw:
        _, key = await gw.create_user()
        assert (await gw.client(key).get("/webhooks/secret")).status_code == 200
        data = settings.data_dir
        assert _mode(data) == 0o700
        for name in ("gengate.db", "gengate.db-wal", "secret.key"):
            assert _mode(data / name) == 0o600, name


async def test_open_data_files_are_tightened_at_start(settings: Settings,
                                                      open_umask: None) -> None:
    async with serve_gateway(settings):
        pass
    settings.data_dir.chmod(0o755)
    (settings.data_dir / "gengate.db").chmod(0o644)
    async with serve_gateway(settings):
        assert _mode(settings.data_dir) == 0o700
        assert _mode(settings.data_dir / "gengate.db") == 0o600


async def test_webhook_secrets_are_sealed_at_rest(settings: Settings) -> None:
    async with serve_gateway(settings) as gw:
        user_id, key = await gw.create_user()
        client = gw.client(key)
        secret = (await client.get("/webhooks/secret")).json()["data"]["secret"]
        rotated = (await client.post("/webhooks/secret/rotate")).json()["data"]["secret"]
        assert secret.startswith("whsec_") and rotated.startswith("whsec_")
        assert (await client.get("/webhooks/secret")).json()["data"]["secret"] == rotated
        with sqlite3.connect(settings.data_dir / "gengate.db") as db:
            (stored,) = db.execute("SELECT webhook_secret FROM users WHERE id = ?",
                                   (user_id,)).fetchone()
    assert stored and not stored.startswith("whsec_") and rotated not in stored
    for name in ("gengate.db", "gengate.db-wal"):
        raw = (settings.data_dir / name).read_bytes() if (settings.data_dir / name).exists() \
            else b""
        assert rotated.encode() not in raw and secret.encode() not in raw
