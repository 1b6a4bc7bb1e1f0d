"""``gengate``: serve, work, migrate, administer, and submit jobs from the shell."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from typing import Annotated, Any

import typer
from rich.console import Console

from gengate.cli_results import results_app
from gengate.config import Settings

app = typer.Typer(help="gengate: a self-hosted TTAPI-compatible generation gateway",
                  no_args_is_help=True)
admin_app = typer.Typer(help="Manage users, keys and quota (works on the database directly)",
                        no_args_is_help=True)
app.add_typer(admin_app, name="admin")
accounts_app = typer.Typer(help="The operator's upstream accounts (the pool jobs are routed to)",
                           no_args_is_help=True)
admin_app.add_typer(accounts_app, name="accounts")
app.add_typer(results_app, name="results")
console = Console()



def _print(data: Any) -> None:
    console.print_json(json.dumps(data))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    fd: Annotated[int | None, typer.Option(
        help="Listen on this inherited, already bound TCP socket instead of --host/--port "
        "(socket activation, a supervisor)")] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="API only")] = False,
    demo: Annotated[bool, typer.Option(help="Create a demo user and run a demo job")] = False,
) -> None:
    """Run the API (and, unless --no-worker, the worker) in this process."""
    import uvicorn

    from gengate.api.app import create_app
    from gengate.logs import configure

    listener = None
    if fd is not None:
        listener = _inherited_socket(fd)
        host, port = listener.getsockname()[:2]
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure(settings.log_level)  # uvicorn keeps to it: log_config=None below
    application = create_app(settings, with_worker=not no_worker)
    if demo:
        from gengate.demo import attach_demo

        attach_demo(application, settings, console)
    # uvicorn handles SIGTERM itself (a graceful shutdown), then raises it again once it has
    # stopped; a stop that was asked for ends with status 0, as `gengate worker` does
    signal.signal(signal.SIGTERM, _exit_cleanly)
    # X-Forwarded-For is gengate's to judge (GENGATE_TRUSTED_PROXIES), not the server's
    config = uvicorn.Config(application, host=settings.host, port=settings.port,
                            log_level="warning", log_config=None,
                            access_log=False, lifespan="on", proxy_headers=False)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[listener] if listener is not None else None)
    except KeyboardInterrupt:
        pass
    if not server.started:
        raise SystemExit(3)  # uvicorn logged why (as uvicorn.run, its start-up failure status)


def _inherited_socket(fd: int) -> socket.socket:
    """The listening TCP socket a parent process handed over as file descriptor ``fd``."""
    try:
        sock = socket.socket(fileno=fd)  # family and type read from the descriptor
    except OSError as exc:
        raise typer.BadParameter(f"{fd} is not an open socket: {exc.strerror}",
                                 param_hint="--fd") from exc
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise typer.BadParameter(f"{fd} is not a TCP socket", param_hint="--fd")
    return sock


def _exit_cleanly(_signum: int, _frame: Any) -> None:
    raise SystemExit(0)


def _run_until_signal(with_worker: bool, with_dispatcher: bool, what: str) -> None:
    from gengate.logs import configure
    from gengate.runtime import Runtime

    settings = Settings()
    configure(settings.log_level)  # as `serve` does, through uvicorn

    async def main() -> None:
        runtime = await Runtime.start(settings, with_worker=with_worker,
                                      with_dispatcher=with_dispatcher, with_api=False)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        console.print(f"{what} running; Ctrl+C or SIGTERM stops it")
        await stop.wait()
        await runtime.close()

    asyncio.run(main())


@app.command()
def worker() -> None:
    """Run the worker and the webhook dispatcher, without the API."""
    _run_until_signal(True, True, "worker and webhook dispatcher")


@app.command()
def dispatch() -> None:
    """Run only the webhook dispatcher: deliver pending notifications."""
    _run_until_signal(False, True, "webhook dispatcher")


@app.command()
def migrate(
    new: Annotated[str | None, typer.Option(
        "--new", help="For developers: write the next migration from the changes to the "
        "tables, with this message")] = None,
) -> None:
    """Create or upgrade the database schema."""
    from gengate.credentials import load_key
    from gengate.datafiles import private_dir, private_sqlite_file
    from gengate.store import Store
    from gengate.store.migrate import new_revision

    async def main() -> str | None:
        settings = Settings()
        private_dir(settings.data_dir)
        private_sqlite_file(settings.resolved_database_url())
        store = Store.open(settings.resolved_database_url(),
                           pool=settings.pool_sizes(api=False, worker=False))
        try:
            if new:
                return await new_revision(store.db, new)
            await store.migrate(load_key(settings.secret_key, settings.data_dir))
            return None
        finally:
            await store.close()

    path = asyncio.run(main())
    console.print(f"wrote {path}" if path else "database is up to date")


def _admin(fn: Any, part: str = "admin") -> Any:
    """Run ``fn`` on a service of a runtime without a worker, print what it returns."""
    from gengate.errors import GengateError
    from gengate.runtime import Runtime

    async def main() -> Any:
        runtime = await Runtime.start(Settings(), with_worker=False, with_api=False)
        try:
            return await fn(getattr(runtime, part))
        finally:
            await runtime.close()

    try:
        _print(asyncio.run(main()))
    except GengateError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None


@admin_app.command("create-user")
def create_user(email: str, balance: float = 0.0,
                max_queue: Annotated[int | None, typer.Option()] = None) -> None:
    """Create a user; prints its API key once."""
    _admin(lambda a: a.create_user(email, balance, max_queue))


@admin_app.command("users")
def users() -> None:
    """List users."""
    _admin(lambda a: a.list())


@admin_app.command("topup")
def topup(user_id: int, amount: float, note: str = "") -> None:
    """Add quota to a user (negative removes)."""
    _admin(lambda a: a.topup(user_id, amount, note))


@admin_app.command("set-password")
def set_password(user_id: int, password: Annotated[str, typer.Option(
        prompt=True, hide_input=True, confirmation_prompt=True,
        help="The console password (8 to 256 characters)")]) -> None:
    """Set a user's console sign-in password (stored as an argon2id hash)."""
    _admin(lambda a: a.set_password(user_id, password))


@admin_app.command("set-max-queue")
def set_max_queue(user_id: int, max_queue: int) -> None:
    """Set how many jobs a user may have in progress."""
    _admin(lambda a: a.update(user_id, max_queue=max_queue))


@admin_app.command("set-rate")
def set_rate(user_id: int,
             per_second: Annotated[int | None, typer.Option(help="0 = no limit")] = None,
             per_minute: Annotated[int | None, typer.Option(help="0 = no limit")] = None) -> None:
    """Set the request limits of a user's keys (other nodes apply them within a second)."""
    _admin(lambda a: a.update(user_id, rate_per_second=per_second, rate_per_minute=per_minute))


def _key_limits(name: str | None, products: list[str] | None, models: list[str] | None,
                cidrs: list[str] | None, expires: str | None, cap_day: float | None,
                cap_month: float | None, cap_total: float | None, per_second: int | None,
                per_minute: int | None) -> dict[str, Any]:
    """The limits given on the command line, as the API's fields (``none`` clears one)."""
    from gengate.api import schemas

    given = {"name": name, "products": products, "models": models, "cidrs": cidrs,
             "expiresAt": expires, "capDay": cap_day, "capMonth": cap_month,
             "capTotal": cap_total, "ratePerSecond": per_second, "ratePerMinute": per_minute}
    fields: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    for k, v in list(fields.items()):
        if v == "none" or v == ["none"]:
            fields[k] = None
    return schemas.parse(schemas.KeyUpdate, fields).model_dump(exclude_unset=True)


ListOpt = Annotated[list[str] | None, typer.Option(help="repeat for each; `none` clears")]
NameOpt = Annotated[str | None, typer.Option(help="a label for the key")]
ExpiresOpt = Annotated[str | None, typer.Option(
    help="ISO 8601 time or epoch seconds the key stops working; `none` clears")]
CapOpt = Annotated[float | None, typer.Option(help="quota; clear with the API (null)")]
RateOpt = Annotated[int | None, typer.Option(help="requests; 0 = no limit")]


@admin_app.command("issue-key")
def issue_key(user_id: int, name: NameOpt = None, product: ListOpt = None,
              model: ListOpt = None, cidr: ListOpt = None, expires: ExpiresOpt = None,
              cap_day: CapOpt = None, cap_month: CapOpt = None, cap_total: CapOpt = None,
              per_second: RateOpt = None, per_minute: RateOpt = None) -> None:
    """Issue another API key for a user, with optional limits (docs/keys.md); prints its
    secret once."""
    limits = _key_limits(name, product, model, cidr, expires, cap_day, cap_month, cap_total,
                         per_second, per_minute)
    _admin(lambda a: a.create(user_id, limits), "keys")


@admin_app.command("keys")
def keys(user_id: int) -> None:
    """List a user's keys with their limits and spend (never the secrets)."""
    _admin(lambda a: a.list(user_id), "keys")


@admin_app.command("update-key")
def update_key(user_id: int, key_id: int, name: NameOpt = None, product: ListOpt = None,
               model: ListOpt = None, cidr: ListOpt = None, expires: ExpiresOpt = None,
               cap_day: CapOpt = None, cap_month: CapOpt = None, cap_total: CapOpt = None,
               per_second: RateOpt = None, per_minute: RateOpt = None) -> None:
    """Change a key's name or limits; every node applies them within a second."""
    limits = _key_limits(name, product, model, cidr, expires, cap_day, cap_month, cap_total,
                         per_second, per_minute)
    _admin(lambda a: a.update(user_id, key_id, limits), "keys")


@admin_app.command("rotate-key")
def rotate_key(user_id: int, key_id: int) -> None:
    """Give a key a new secret (printed once); the old one stops working at once."""
    _admin(lambda a: a.rotate(user_id, key_id), "keys")


@admin_app.command("revoke-key")
def revoke_key(user_id: int, key_id: int) -> None:
    """Revoke one of a user's keys; every node refuses it within a second."""
    _admin(lambda a: a.revoke(user_id, key_id), "keys")


@admin_app.command("key-usage")
def key_usage(user_id: int, days: int = 30) -> None:
    """Spend per key per UTC day."""
    _admin(lambda a: a.usage(user_id, days), "keys")


@admin_app.command("ledger")
def ledger(user_id: int, limit: int = 50) -> None:
    """A user's balance, frozen quota, totals and latest ledger rows."""
    _admin(lambda a: a.ledger(user_id, limit))


def _slots(text: str | None) -> dict[str, int] | None:
    """``fast=12,relax=3`` as a dict (the API checks the modes and numbers)."""
    if text is None:
        return None
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        mode, sep, number = part.partition("=")
        if not sep or not number.strip().lstrip("-").isdigit():
            console.print(f"[red]--slots: `{part}` is not MODE=NUMBER[/red]")
            raise typer.Exit(2)
        out[mode.strip()] = int(number)
    return out


def _account_fields(**given: Any) -> dict[str, Any]:
    from gengate.api import schemas
    from gengate.errors import GengateError

    fields: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    model = schemas.CreateAccountRequest if "provider" in fields else schemas.UpdateAccountRequest
    try:
        return schemas.parse(model, fields).model_dump(exclude_unset=True)
    except GengateError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None


SecretOpt = Annotated[str | None, typer.Option(
    "--secret", envvar="GENGATE_ACCOUNT_SECRET",
    help="midjourney-proxy mj-api-secret (or GENGATE_ACCOUNT_SECRET, kept out of history)")]
ApiKeyOpt = Annotated[str | None, typer.Option(
    "--api-key", envvar="GENGATE_ACCOUNT_API_KEY",
    help="TTAPI key of a ttapi account (or GENGATE_ACCOUNT_API_KEY)")]
SlotsOpt = Annotated[str | None, typer.Option(help="Concurrent jobs per mode: fast=12,relax=3")]
Opt = typer.Option
AccountId = Annotated[int, typer.Argument(min=1, max=2**31 - 1)]
BaseUrlOpt = Annotated[str | None, Opt("--base-url")]
InstanceOpt = Annotated[str | None, Opt("--instance-id")]
PriorityOpt = Annotated[int | None, Opt(help="Higher is tried first")]
WeightOpt = Annotated[int | None, Opt(help="Share among equally good accounts")]
DailyCapOpt = Annotated[int | None, Opt("--daily-cap")]
MinGapOpt = Annotated[float | None, Opt("--min-gap", help="Seconds between submissions")]
GapJitterOpt = Annotated[float | None, Opt("--gap-jitter")]
WorkHoursOpt = Annotated[str | None, Opt("--work-hours", help="UTC, e.g. 09:00-22:50")]


@accounts_app.command("list")
def accounts_list() -> None:
    """Accounts with slots in use, health and today's submissions (never credentials)."""
    _admin(lambda p: p.list(), "pool")


@accounts_app.command("add")
def accounts_add(
    name: str,
    provider: Annotated[str, Opt(help="midjourney_proxy, ttapi or local")] = "midjourney_proxy",
    base_url: BaseUrlOpt = None, secret: SecretOpt = None, api_key: ApiKeyOpt = None,
    instance_id: InstanceOpt = None, slots: SlotsOpt = None, priority: PriorityOpt = None,
    weight: WeightOpt = None, daily_cap: DailyCapOpt = None, min_gap: MinGapOpt = None,
    gap_jitter: GapJitterOpt = None, work_hours: WorkHoursOpt = None,
) -> None:
    """Add an upstream account to the pool."""
    fields = _account_fields(
        name=name, provider=provider, baseUrl=base_url, secret=secret, apiKey=api_key,
        instanceId=instance_id, slots=_slots(slots), priority=priority, weight=weight,
        dailyCap=daily_cap, minGap=min_gap, gapJitter=gap_jitter, workHours=work_hours)
    _admin(lambda p: p.create(fields), "pool")


@accounts_app.command("update")
def accounts_update(
    account_id: AccountId,
    name: Annotated[str | None, Opt()] = None,
    base_url: BaseUrlOpt = None, secret: SecretOpt = None, api_key: ApiKeyOpt = None,
    instance_id: InstanceOpt = None, slots: SlotsOpt = None, priority: PriorityOpt = None,
    weight: WeightOpt = None, daily_cap: DailyCapOpt = None, min_gap: MinGapOpt = None,
    gap_jitter: GapJitterOpt = None, work_hours: WorkHoursOpt = None,
) -> None:
    """Change an account."""
    fields = _account_fields(
        name=name, baseUrl=base_url, secret=secret, apiKey=api_key, instanceId=instance_id,
        slots=_slots(slots), priority=priority, weight=weight, dailyCap=daily_cap,
        minGap=min_gap, gapJitter=gap_jitter, workHours=work_hours)
    _admin(lambda p: p.update(account_id, fields), "pool")


@accounts_app.command("enable")
def accounts_enable(account_id: AccountId) -> None:
    """Route jobs to the account again (clears cooling and flags)."""
    _admin(lambda p: p.update(account_id, {"enabled": True}), "pool")


@accounts_app.command("disable")
def accounts_disable(account_id: AccountId) -> None:
    """Stop routing new jobs to the account (running ones finish)."""
    _admin(lambda p: p.update(account_id, {"enabled": False}), "pool")


@accounts_app.command("delete")
def accounts_delete(account_id: AccountId) -> None:
    """Remove the account (running jobs finish; follow-ups of its jobs fail)."""
    _admin(lambda p: p.delete(account_id), "pool")


@accounts_app.command("reseal")
def accounts_reseal() -> None:
    """Seal all stored credentials with the first GENGATE_SECRET_KEY (key rotation)."""
    _admin(lambda p: p.reseal(), "pool")


@accounts_app.command("events")
def accounts_events(account_id: AccountId, limit: int = 50) -> None:
    """The account's health changes, newest first."""
    _admin(lambda p: p.events(account_id, limit=limit), "pool")


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    from gengate.cli.jobs import register

    register(app)(prog_name="gengate")
