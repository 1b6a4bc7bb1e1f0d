"""A real headless Chromium (Debian's, at /usr/bin/chromium; `make test` installs it)
driven by Playwright. Skips loudly where either is missing, fails under CI=true."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need_service

CHROMIUM = os.environ.get("GENGATE_TEST_CHROMIUM", "/usr/bin/chromium")
#: set to a folder to keep a screenshot of every page the tests visit (desktop and phone)
SHOTS = os.environ.get("GENGATE_TEST_SCREENSHOTS", "")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        need_service("Playwright", f"{exc} (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        need_service("Chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    async with async_playwright() as pw:
        # root in a container has no user namespaces for Chromium's sandbox
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        launched = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield launched
        finally:
            await launched.close()


async def shot(page: Any, name: str) -> None:
    """Keep the page as a desktop and a phone-width screenshot (when SHOTS is set)."""
    if not SHOTS:
        return
    folder = Path(SHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.screenshot(path=str(folder / f"{name}-phone.png"), full_page=True)
    await page.set_viewport_size(size)
