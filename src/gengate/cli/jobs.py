"""The client commands: ``gengate <product> <action>`` for every route of every product
(built from the product contracts), and ``fetch``, ``wait``, ``list``, ``cancel``,
``info`` across products. They talk to a running server over HTTP."""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

import httpx
import typer
from rich.console import Console
from rich.table import Table

from gengate.cli.contract import Field, fields_of
from gengate.cli.display import Display, display_for
from gengate.cli.outcome import Exit, exit_for, explain
from gengate.client import (
    Action,
    AsyncClient,
    Job,
    Unreachable,
    WaitTimeout,
    actions,
    job_id_of,
)
from gengate.errors import GengateError

__all__ = ["DEFAULT_URL", "product_app", "register", "watch"]

DEFAULT_URL = "http://127.0.0.1:8000"
#: the order of gravity of outcomes: the exit status is the gravest one seen
_GRAVITY = (Exit.OK, Exit.JOB_FAILED, Exit.TIMEOUT, Exit.REFUSED, Exit.UNREACHABLE)


@dataclass
class Conn:
    """How to reach the server, and how to answer."""

    key: str | None
    base_url: str
    as_json: bool
    debug: bool
    out: Console = field(default_factory=lambda: Console(soft_wrap=True))
    err: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True,
                                                         highlight=False))

    def fail(self, status: Exit, line: str) -> None:
        self.err.print(f"[red]gengate:[/red] {line}", markup=True)
        raise SystemExit(int(status))

    def run(self, fn: Callable[[AsyncClient], Awaitable[Exit]]) -> None:
        """Run ``fn`` with a client; its errors as one line and an exit status."""
        if not self.key:
            self.fail(Exit.USAGE, "no API key: set GENGATE_API_KEY or give --key")
        key = str(self.key)

        async def main() -> Exit:
            async with AsyncClient(self.base_url, key) as client:
                return await fn(client)

        try:
            status = asyncio.run(main())
        except (GengateError, Unreachable, WaitTimeout) as exc:
            if self.debug:
                raise
            self.fail(exit_for(exc), explain(exc))
        except KeyboardInterrupt:
            raise SystemExit(130) from None
        except (httpx.HTTPError, OSError) as exc:  # saving results (--out)
            if self.debug:
                raise
            self.fail(Exit.JOB_FAILED, f"could not save the results: {explain(exc)}")
        raise SystemExit(int(status))

    def show(self, data: Any) -> None:
        """A JSON answer: indented on a terminal, one line elsewhere."""
        if self.out.is_terminal and not self.as_json:
            self.out.print_json(json.dumps(data))
        else:
            sys.stdout.write(json.dumps(data, separators=(",", ":")) + "\n")


KeyOpt = Annotated[str | None, typer.Option("--key", envvar="GENGATE_API_KEY",
                                            help="API key (or GENGATE_API_KEY)",
                                            show_default=False)]
UrlOpt = Annotated[str, typer.Option("--base-url", envvar="GENGATE_BASE_URL",
                                     help="The server's address (or GENGATE_BASE_URL)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per job per line, "
                                       "for scripts")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the traceback of an error")]
WaitOpt = Annotated[bool, typer.Option(help="Follow the jobs until they end")]
WaitTimeoutOpt = Annotated[float, typer.Option("--wait-timeout",
                                               help="Seconds to wait for the jobs to end")]
IntervalOpt = Annotated[float, typer.Option(min=0.05, help="Seconds between polls")]
OutOpt = Annotated[Path | None, typer.Option(file_okay=False, show_default=False,
                                             help="Download the results into this folder")]
CountOpt = Annotated[int, typer.Option(min=1, max=100, help="Jobs to submit per prompt")]
ProductOpt = Annotated[str | None, typer.Option(
    help="The jobs' product (found when not given)", show_default=False)]
JobIds = Annotated[list[str], typer.Argument(help="Job ids", show_default=False)]


def _job_options(*, wait: WaitOpt = True, count: CountOpt = 1, out: OutOpt = None,
                 wait_timeout: WaitTimeoutOpt = 1500.0, interval: IntervalOpt = 1.0,
                 as_json: JsonOpt = False, key: KeyOpt = None, base_url: UrlOpt = DEFAULT_URL,
                 debug: DebugOpt = False) -> None:
    """The options of every job command (read for their signature)."""


# -- running jobs -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Submission:
    product: str
    action: str
    fields: dict[str, Any]

    @property
    def label(self) -> str:
        prompt = self.fields.get("prompt")
        if not isinstance(prompt, str):
            return f"{self.product} {self.action}"
        short = prompt if len(prompt) <= 24 else f"{prompt[:23]}…"
        return f"{self.product} {self.action} '{short}'"


async def _download(urls: Sequence[str], out: Path, job: Job) -> list[str]:
    """Each result file into ``out`` under the name the product stored it by
    (``<jobId><suffix>.<ext>``); never sends the API key to the file's host."""
    out.mkdir(parents=True, exist_ok=True)
    saved: list[str] = []
    async with httpx.AsyncClient(timeout=120.0, follow_redirects=True) as http:
        for i, url in enumerate(urls):
            name = Path(urlparse(url).path).name or f"{job.id}-{i}"
            if job.id not in name:
                name = f"{job.id}-{name}"
            response = await http.get(url)
            response.raise_for_status()
            target = out / name
            target.write_bytes(response.content)
            saved.append(str(target))
    return saved


async def watch(client: AsyncClient, jobs: Sequence[tuple[str, str | None]],
                display: Display, *, timeout: float, interval: float,
                out: Path | None) -> list[Exit]:
    """Wait for ``(jobId, product)`` pairs at once, telling ``display`` each change."""

    async def one(job_id: str, product: str | None) -> Exit:
        key = job_id
        job = await client.wait(job_id, product=product, timeout=timeout, interval=interval,
                                on_progress=lambda j: display.changed(key, j))
        files: list[str] = []
        if out is not None and job.succeeded:
            files = await _download(job.files(), out, job)
        display.finished(key, job, files)
        return Exit.OK if job.succeeded else Exit.JOB_FAILED

    async def guarded(job_id: str, product: str | None) -> Exit:
        try:
            return await one(job_id, product)
        except WaitTimeout as exc:
            display.refused(job_id, job_id, explain(exc))
            return Exit.TIMEOUT
        except GengateError as exc:
            display.refused(job_id, job_id, explain(exc))
            return Exit.REFUSED

    with display:
        return list(await asyncio.gather(*(guarded(j, p) for j, p in jobs)))


def gravest(outcomes: Sequence[Exit]) -> Exit:
    return max(outcomes, key=_GRAVITY.index, default=Exit.OK)


async def run_submissions(conn: Conn, client: AsyncClient, subs: Sequence[Submission], *,
                          wait: bool, timeout: float, interval: float,
                          out: Path | None) -> Exit:
    """Submit every job (at once), then follow them; routes that make no job print their
    answer. A refused submit is told in one line; the others go on."""
    answers = await asyncio.gather(*(client.call(s.product, s.action, **s.fields)
                                     for s in subs), return_exceptions=True)
    outcomes: list[Exit] = []
    jobs: list[tuple[Submission, str]] = []
    for sub, answer in zip(subs, answers, strict=True):
        if isinstance(answer, Unreachable):
            raise answer
        if isinstance(answer, GengateError):
            if len(subs) == 1:
                raise answer
            conn.err.print(f"[red]gengate:[/red] {sub.label}: {explain(answer)}")
            outcomes.append(Exit.REFUSED)
        elif isinstance(answer, BaseException):
            raise answer
        elif (job_id := job_id_of(answer)) is not None:
            jobs.append((sub, job_id))
        else:
            conn.show(answer.get("data"))
            outcomes.append(Exit.OK)
    if not jobs:
        return gravest(outcomes)
    if not wait:
        for sub, job_id in jobs:
            if conn.as_json:
                conn.show({"jobId": job_id, "product": sub.product, "action": sub.action})
            else:
                sys.stdout.write(f"{job_id}\n")
        return gravest(outcomes)
    display = display_for(conn.out, conn.as_json)
    for sub, job_id in jobs:
        display.submitted(job_id, sub.label, job_id)
    outcomes += await watch(client, [(job_id, sub.product) for sub, job_id in jobs], display,
                            timeout=timeout, interval=interval, out=out)
    return gravest(outcomes)


# -- one command per product route --------------------------------------------------------
def action_command(action: Action) -> Callable[..., None]:
    """``gengate <product> <action>``: the route's fields as options; prompts as
    arguments (several prompts, or ``--count``, submit several jobs at once)."""
    prompt, options = fields_of(action)
    by_name: dict[str, Field] = {f.name: f for f in options}

    def callback(**given: Any) -> None:
        conn = Conn(given["key"], given["base_url"], given["as_json"], given["debug"])
        fields = {by_name[n].wire: by_name[n].value(v) for n, v in given.items()
                  if n in by_name and by_name[n].value(v) is not None}
        prompts: list[str | None] = list(given.get("prompts") or ()) or [None]
        subs = [Submission(action.product, action.name,
                           {**fields, **({"prompt": p} if p is not None else {})})
                for p in prompts for _ in range(given["count"])]
        conn.run(lambda client: run_submissions(
            conn, client, subs, wait=given["wait"], timeout=given["wait_timeout"],
            interval=given["interval"], out=given["out"]))

    common = inspect.signature(_job_options, eval_str=True).parameters.values()
    params = ([prompt.param] if prompt is not None else []) + [f.param for f in options]
    params += list(common)
    callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    callback.__annotations__ = {p.name: p.annotation for p in params}
    callback.__doc__ = f"{action.summary} ({action.method} {action.path})."
    callback.__name__ = action.name.replace("-", "_")
    return callback


def product_app(product: str, table: dict[str, Action]) -> typer.Typer:
    """One command per route of ``product`` (its fetch is ``gengate fetch``)."""
    group = typer.Typer(help=f"{product}: submit jobs, follow them with progress bars, "
                        "download their results", no_args_is_help=True)
    for name, action in table.items():
        if name != "fetch":
            group.command(name, help=action_command(action).__doc__)(action_command(action))
    return group


# -- across products ----------------------------------------------------------------------
def fetch_command(job_ids: JobIds, product: ProductOpt = None, as_json: JsonOpt = False,
                  key: KeyOpt = None, base_url: UrlOpt = DEFAULT_URL,
                  debug: DebugOpt = False) -> None:
    """Print jobs' fetch answers, whatever their product."""
    conn = Conn(key, base_url, as_json, debug)

    async def run(client: AsyncClient) -> Exit:
        for job_id in job_ids:
            conn.show((await client.fetch(job_id, product)).body)
        return Exit.OK

    conn.run(run)


def wait_command(job_ids: JobIds, product: ProductOpt = None, out: OutOpt = None,
                 wait_timeout: WaitTimeoutOpt = 1500.0, interval: IntervalOpt = 1.0,
                 as_json: JsonOpt = False, key: KeyOpt = None, base_url: UrlOpt = DEFAULT_URL,
                 debug: DebugOpt = False) -> None:
    """Follow jobs until they end, with progress; download their results with --out."""
    conn = Conn(key, base_url, as_json, debug)

    async def run(client: AsyncClient) -> Exit:
        display = display_for(conn.out, as_json)
        for job_id in job_ids:
            display.submitted(job_id, product or "job", job_id)
        return gravest(await watch(client, [(j, product) for j in job_ids], display,
                                   timeout=wait_timeout, interval=interval, out=out))

    conn.run(run)


def list_command(
    product: Annotated[str | None, typer.Option(help="Only this product's jobs",
                                                show_default=False)] = None,
    status: Annotated[str | None, typer.Option(help="Only jobs in this status",
                                               show_default=False)] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
    as_json: JsonOpt = False, key: KeyOpt = None, base_url: UrlOpt = DEFAULT_URL,
    debug: DebugOpt = False,
) -> None:
    """Your jobs across products, newest first."""
    conn = Conn(key, base_url, as_json, debug)
    columns = ("jobId", "product", "action", "status", "quota", "createdAt")

    async def run(client: AsyncClient) -> Exit:
        items = await client.list_jobs(product=product, status=status, page=page, limit=limit)
        if as_json:
            for item in items:
                conn.show(item)
        elif conn.out.is_terminal:
            table = Table(*columns)
            for item in items:
                table.add_row(*(str(item.get(k) or "") for k in columns))
            conn.out.print(table)
        else:
            for item in items:
                sys.stdout.write("\t".join(str(item.get(k) or "") for k in columns) + "\n")
        return Exit.OK

    conn.run(run)


def cancel_command(job_ids: JobIds, as_json: JsonOpt = False, key: KeyOpt = None,
                   base_url: UrlOpt = DEFAULT_URL, debug: DebugOpt = False) -> None:
    """Cancel jobs of any product (their frozen quota is given back)."""
    conn = Conn(key, base_url, as_json, debug)

    async def run(client: AsyncClient) -> Exit:
        for job_id in job_ids:
            job = await client.cancel(job_id)
            if as_json:
                conn.show(job.body)
            else:
                sys.stdout.write(f"{job_id} {job.status} {job.message}".rstrip() + "\n")
        return Exit.OK

    conn.run(run)


def info_command(as_json: JsonOpt = False, key: KeyOpt = None,
                 base_url: UrlOpt = DEFAULT_URL, debug: DebugOpt = False) -> None:
    """Your balance, frozen quota, max_queue and jobs in progress."""
    conn = Conn(key, base_url, as_json, debug)

    async def run(client: AsyncClient) -> Exit:
        conn.show(await client.info())
        return Exit.OK

    conn.run(run)


#: Midjourney's commands also at the top level, as before products had groups
_SHORTCUTS = ("imagine", "action")


def register(app: typer.Typer) -> typer.Typer:
    """Add the client commands to ``app``: a group per product (from the product
    registry's route tables), the commands across products, and the shortcuts."""
    table = actions()
    for product, routes in table.items():
        app.add_typer(product_app(product, routes), name=product)
    for name, fn in (("fetch", fetch_command), ("wait", wait_command),
                     ("list", list_command), ("cancel", cancel_command),
                     ("info", info_command)):
        app.command(name)(fn)
    for name in _SHORTCUTS:
        action = table.get("midjourney", {}).get(name)
        if action is not None:
            app.command(name, help=f"Midjourney's {name} (as `gengate midjourney {name}`)")(
                action_command(action))
    return app
