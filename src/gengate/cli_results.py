"""``gengate results``: move result files into the object store, and run a retention pass
by hand. Both work on the database and the stores directly, from any node."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.console import Console

from gengate.config import Settings

__all__ = ["results_app"]

results_app = typer.Typer(help="Result files: move them to the object store, expire old ones",
                          no_args_is_help=True)
console = Console()


def _with_stores(fn: Any) -> Any:
    from gengate.errors import GengateError
    from gengate.resultstores import ResultStores
    from gengate.store import Store

    async def main() -> Any:
        settings = Settings()
        store = Store.open(settings.resolved_database_url())
        try:
            await store.migrate()
            return await fn(settings, store, ResultStores.from_settings(settings))
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except (GengateError, ValueError) as exc:
        console.print(f"[red]{getattr(exc, 'message', exc)}[/red]")
        raise typer.Exit(1) from None


@results_app.command("move")
def move(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Jobs read per page")] = 200,
    delete_local: Annotated[bool, typer.Option(
        "--delete-local", help="Remove each job's local files once its URLs are switched")
    ] = False,
) -> None:
    """Copy local result files into the object store and switch the jobs' URLs.

    Run it again after an interruption to go on where it stopped."""
    from gengate.resultmove import move_results

    async def run(_settings: Settings, store: Any, stores: Any) -> Any:
        return await move_results(store, stores, batch=batch, delete_local=delete_local)

    report = _with_stores(run)
    console.print_json(data=report.as_dict())
    if report.missing:
        raise typer.Exit(3)


@results_app.command("expire")
def expire() -> None:
    """Run one result retention pass now.

    Deletes the files of results past their product's retention period."""
    from gengate.clock import SystemClock
    from gengate.retention import ResultRetention
    from gengate.runtime import retention_policy

    async def run(settings: Settings, store: Any, stores: Any) -> int:
        return await ResultRetention(store, stores, SystemClock(),
                                     retention_policy(settings)).run_once()

    console.print_json(data={"expired": _with_stores(run)})
