"""``gengate serve --demo``: a demo user with a printed key, and one job shown end to end."""

from __future__ import annotations

import asyncio
import logging
import os

import httpx
from rich.console import Console

from gengate.api.app import GengateApp
from gengate.background import spawn
from gengate.client import AsyncClient, Job
from gengate.config import Settings
from gengate.keys import hash_key
from gengate.runtime import Runtime

__all__ = ["attach_demo"]

log = logging.getLogger("gengate.demo")

DEMO_EMAIL = "demo@gengate.local"
DEMO_BALANCE = 1000
DEMO_PROMPT = "a cute kitten in a sunny meadow, golden hour --ar 4:5"
#: the demo user's console password (a local demo only: `make run`)
DEMO_PASSWORD = "gengate-demo"


async def ensure_demo_key(runtime: Runtime) -> str:
    """Reuse the demo user (and its saved key) or create them."""
    key_file = runtime.settings.data_dir / "demo.key"
    user = await runtime.store.find_user_by_email(DEMO_EMAIL)
    if user is None:
        created = await runtime.admin.create_user(DEMO_EMAIL, DEMO_BALANCE, None)
        key = str(created["apiKey"])
    else:
        key = key_file.read_text().strip() if key_file.exists() else ""
        if not key or await runtime.store.key_by_hash(hash_key(key)) is None:
            key = str((await runtime.admin.issue_key(user.id))["apiKey"])
        if user.balance < 100_000:
            await runtime.admin.topup(user.id, DEMO_BALANCE, "demo top-up")
    user = await runtime.store.find_user_by_email(DEMO_EMAIL)
    assert user is not None
    await runtime.admin.set_password(user.id, DEMO_PASSWORD)
    key_file.write_text(key + "\n")
    os.chmod(key_file, 0o600)
    return key


def attach_demo(application: GengateApp, settings: Settings, console: Console) -> None:
    original = application.startup
    tasks: set[asyncio.Task[None]] = set()

    async def startup() -> None:
        await original()
        assert application.runtime is not None
        key = await ensure_demo_key(application.runtime)
        task = spawn(_show(settings, key, console), "gengate-demo")
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    application.startup = startup  # type: ignore[method-assign]


async def _wait_up(base: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            try:
                if (await http.get(f"{base}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)


async def _show(settings: Settings, key: str, console: Console) -> None:
    base = settings.resolved_public_url()
    try:
        await _wait_up(base)
        console.rule("[bold]gengate is running")
        console.print(f"base URL  {base}\nAPI key   [bold]{key}[/bold]  (saved in "
                      f"{settings.data_dir / 'demo.key'})")
        console.print(f"console   [bold]{base}/console[/bold]  sign in as {DEMO_EMAIL} / "
                      f"{DEMO_PASSWORD} (or with the API key)")
        if settings.admin_key:
            console.print(f"operator  {base}/console/signin?method=admin  with "
                          "GENGATE_ADMIN_KEY")
        else:
            console.print("operator  set GENGATE_ADMIN_KEY to open the operator console")
        console.print()
        async with AsyncClient(base, key) as client:
            job_id = await client.imagine(DEMO_PROMPT)
            console.print(f"submitted imagine [cyan]{DEMO_PROMPT}[/cyan]\njob {job_id}")
            job = await client.wait(job_id, interval=0.5, on_progress=lambda j: console.print(
                f"  {j.status:<14} progress {j.progress}"))
        _summary(job, base, key, console)
    except Exception:
        log.exception("event=demo_failed")


def _summary(job: Job, base: str, key: str, console: Console) -> None:
    """The job's result and commands to try next. Commands are printed unwrapped
    (``soft_wrap``), whatever the terminal's width, so they paste as one line each."""
    data = job.data

    def line(text: str = "") -> None:
        console.print(text, soft_wrap=True, highlight=False)

    line(f"\n[green]{job.status}[/green] {data.get('width')}x{data.get('height')} grid: "
         f"{data.get('cdnImage')}")
    for url in data.get("images") or []:
        line(f"  {url}")
    line(f"components: {', '.join(data.get('components') or [])}\n")
    line("Try it yourself:")
    line(f"  curl -X POST {base}/midjourney/v1/imagine -H 'TT-API-KEY: {key}' "
         "-H 'Content-Type: application/json' "
         "-d '{\"prompt\":\"a cute kitten --ar 4:5\",\"mode\":\"fast\",\"getUImages\":true}'")
    line(f"  curl '{base}/midjourney/v1/fetch?jobId={job.id}' -H 'TT-API-KEY: {key}'")
    line(f"  GENGATE_API_KEY={key} GENGATE_BASE_URL={base} .venv/bin/gengate imagine "
         "'a red fox --ar 16:9'")
    line(f"  status page: {base}/status   OpenAPI: {base}/openapi.json\n")
    line("Press Ctrl+C to stop.")
