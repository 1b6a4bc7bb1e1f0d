"""The composition root: builds the store, storage, providers, services and worker from
settings, in that order, and closes them in reverse."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from gengate.access import Access
from gengate.admin import AdminService
from gengate.admission import Admitter
from gengate.background import supervise
from gengate.clock import Clock, SystemClock
from gengate.config import Settings
from gengate.credentials import CredentialBox, load_key
from gengate.datafiles import private_dir, private_sqlite_file
from gengate.identity import NodeIdentity
from gengate.incidents import IncidentService
from gengate.jobs import Mode
from gengate.keyring import KeyService
from gengate.keys import parse_networks
from gengate.llm.relay import Relay, build_relay
from gengate.memory import return_large_buffers
from gengate.metrics import Metrics
from gengate.netguard import NetGuard
from gengate.pool import PoolService
from gengate.prices import PriceService
from gengate.products.registry import Registry, builtin
from gengate.providers.local import LocalProvider
from gengate.quota import PriceTable
from gengate.ratelimit import Limits, RateLimiter
from gengate.results import ResultWriter
from gengate.resultstores import ResultStores
from gengate.retention import ResultRetention, RetentionPolicy
from gengate.service import JobService
from gengate.status import StatusService
from gengate.store import Store
from gengate.store.channels import (
    ENDED_CHANNEL,
    JOBS_CHANNEL,
    KEYS_CHANNEL,
    UPSTREAM_CHANNEL,
    WEBHOOKS_CHANNEL,
)
from gengate.upstream_notify import NotifyLinks
from gengate.upstreams import Upstreams
from gengate.webhooks import Dispatcher, WebhookService
from gengate.worker import Worker

__all__ = ["Runtime", "retention_policy"]

log = logging.getLogger("gengate")


def retention_policy(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(settings.result_retention_days, dict(settings.result_retention))


@dataclass
class Runtime:
    settings: Settings
    store: Store
    stores: ResultStores
    http: httpx.AsyncClient
    jobs: JobService
    admin: AdminService
    status: StatusService
    worker: Worker | None
    dispatcher: Dispatcher | None
    limiter: RateLimiter
    metrics: Metrics
    pool: PoolService
    products: Registry
    hooks: WebhookService
    access: Access
    keys: KeyService
    _listener: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    relay: Relay | None = None
    retention: ResultRetention | None = None
    identity: NodeIdentity | None = None
    incidents: IncidentService | None = None
    #: the upstream accounts' adapters and health checks ("check now" on an account)
    upstreams: Upstreams | None = None
    #: the operator's run-time prices over the built-in and environment tables
    prices: PriceService | None = None
    #: upstreams' notification URLs (``GENGATE_UPSTREAM_NOTIFY_URL``; None: not given)
    notify_links: NotifyLinks | None = None

    @classmethod
    async def start(cls, settings: Settings, *, clock: Clock | None = None,
                    with_worker: bool = True, with_dispatcher: bool | None = None,
                    migrate: bool = True, with_api: bool = True,
                    products: Registry | None = None) -> Runtime:
        """Build everything; ``with_dispatcher`` defaults to ``with_worker``; ``with_api``
        (the process serves requests) only sizes the database pool."""
        return_large_buffers()  # request bodies and images: their memory goes back when freed
        clock = clock or SystemClock()
        private_dir(settings.data_dir)
        private_sqlite_file(settings.resolved_database_url())
        keys = load_key(settings.secret_key, settings.data_dir)
        if with_dispatcher is None:
            with_dispatcher = with_worker
        products = products if products is not None else builtin(settings)
        store = Store.open(settings.resolved_database_url(), products.fetch_body,
                           pool=settings.pool_sizes(api=with_api,
                                                    worker=with_worker or with_dispatcher))
        if migrate:
            await store.migrate(keys)
        store.db.start_maintenance()
        if settings.local_account:
            await store.ensure_local_account({m.value: settings.local_slots for m in Mode},
                                             clock.now())
        stores = ResultStores.from_settings(settings)
        http = httpx.AsyncClient(follow_redirects=False, timeout=30.0)
        box = CredentialBox(keys)
        local = LocalProvider(
            settings.data_dir / "local-upstream", delay=settings.local_delay,
            steps=settings.local_steps, fail_marker=settings.local_fail_marker,
            hang_marker=settings.local_hang_marker,
            fail_message=settings.local_fail_message, scale=settings.local_scale,
            renderers=lambda name: products.get(name).renderer(),
        )
        hosting_guard = NetGuard.from_setting(
            settings.hosting_allow, who="hosted accounts", setting="GENGATE_HOSTING_ALLOW")
        pool = PoolService(store, clock, box, hosting_guard, settings.hosting_max_accounts,
                           products)
        # webhooks and describe's url: gengate's requests to addresses users give
        guard = NetGuard.from_setting(settings.webhook_allow, who="user-given URLs")
        metrics = Metrics()
        # a node with leases to hold has a name that outlives its process
        identity = (NodeIdentity.acquire(settings.data_dir, settings.node_id)
                    if with_worker or with_dispatcher else None)
        node = identity.name if identity is not None else None
        dispatcher = (Dispatcher(settings, store, clock, guard, box, metrics,
                                 owner=f"{node}-hooks" if node else None)
                      if with_dispatcher else None)
        notify_links = (NotifyLinks(settings.upstream_notify_url, keys[0])
                        if settings.upstream_notify_url else None)
        upstreams = Upstreams(settings, store, box, http, clock, local, pool.changed,
                              hosting_guard, products, notify_links)
        def on_event() -> None:
            if dispatcher is not None:
                dispatcher.wake()

        worker = (
            Worker(settings, store, upstreams,
                   ResultWriter(stores.primary, http, products=products, stores=stores),
                   clock, http, on_event=on_event, guard=guard, metrics=metrics,
                   products=products, owner=node)
            if with_worker else None
        )
        admitter = Admitter(store, clock, worker.wake if worker else (lambda: None))
        main_prices = PriceTable(settings.price_table(products.prices()))
        hosting_prices = PriceTable(settings.hosting_price_table(products.prices(True)))
        jobs = JobService(store, clock, main_prices, admitter, guard, pool, hosting_prices,
                          products, settings.max_queue_per_product, upstreams, stores,
                          settings.sync_timeout)
        prices = PriceService(store, clock, products.names,
                              {"main": main_prices, "hosting": hosting_prices},
                              {"main": products.prices(), "hosting": products.prices(True)},
                              {"main": settings.prices, "hosting": settings.hosting_prices})
        await prices.load()
        store.ended = jobs.ends.ended  # this node's job ends wake its synchronous waiters
        access = Access(store, clock, parse_networks(
            [p for p in settings.trusted_proxies.split(",") if p.strip()],
            "GENGATE_TRUSTED_PROXIES"), settings.key_poll_interval)
        access.listeners.append(prices.load)
        await access.check_version()
        access.start()
        key_service = KeyService(store, clock, products.names, access.invalidate)
        admin = AdminService(store, clock, key_service, access, settings.default_max_queue)
        status = StatusService(store, clock, settings.status_window_seconds, products)
        retention = None
        if worker is not None:
            worker.start()
            retention = ResultRetention(store, stores, clock, retention_policy(settings),
                                        settings.result_retention_interval,
                                        on_expired=jobs.forget)
            retention.start()
        if dispatcher is not None:
            dispatcher.start()
        limiter = RateLimiter(settings.redis_url,
                              Limits(settings.rate_per_second, settings.rate_per_minute),
                              settings.ip_rate_per_second, settings.admin_failures_per_minute)
        runtime = cls(settings, store, stores, http, jobs, admin, status, worker, dispatcher,
                      limiter, metrics, pool, products,
                      WebhookService(store, clock, dispatcher, box), access, key_service,
                      relay=build_relay(settings, store, clock), retention=retention,
                      identity=identity,
                      incidents=IncidentService(store, clock, list(products.names)),
                      upstreams=upstreams, prices=prices, notify_links=notify_links)
        runtime._listen()
        return runtime

    def _listen(self) -> None:
        """Wake this node's worker and dispatcher on other nodes' NOTIFY, its synchronous
        waiters on the end of their jobs wherever they ran, and drop cached keys on a key
        change (PostgreSQL)."""
        access = self.access
        channels: dict[str, Callable[[str | None], None]] = {
            KEYS_CHANNEL: lambda _payload: access.invalidate()}
        if self.worker is not None:
            worker = self.worker
            channels[JOBS_CHANNEL] = lambda _payload: worker.wake()
            channels[UPSTREAM_CHANNEL] = lambda payload: _nudge(worker, payload)
        if self.dispatcher is not None:
            dispatcher = self.dispatcher
            channels[WEBHOOKS_CHANNEL] = lambda _payload: dispatcher.wake()
        if any(route.sync for _, route in self.products.routes().values()):
            channels[ENDED_CHANNEL] = self._job_ended
        if channels and not self.store.db.is_sqlite:
            db = self.store.db
            self._listener = supervise(lambda: db.listen(channels), "gengate-listen")

    async def upstream_changed(self, account_id: int, task_id: str) -> None:
        """An upstream told of the end of one of the account's tasks: the worker that
        follows it polls it now (this node's, or on PostgreSQL whichever node's)."""
        if not self.store.db.is_sqlite:
            await self.store.publish(UPSTREAM_CHANNEL, f"{account_id}:{task_id}")
        elif self.worker is not None:
            self.worker.nudge(account_id, task_id)

    def _job_ended(self, job_id: str | None) -> None:
        if job_id is None:
            self.jobs.ends.recheck()  # (re)connected: a notification may have been missed
        else:
            self.jobs.ends.ended(job_id)

    async def close(self) -> None:
        await self.access.close()
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self.retention is not None:
            await self.retention.stop()
        if self.worker is not None:
            await self.worker.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        if self.relay is not None:
            await self.relay.close()
        await self.http.aclose()
        await self.store.close()
        if self.identity is not None:
            self.identity.release()


def _nudge(worker: Worker, payload: str | None) -> None:
    """``account id:task id`` from :data:`UPSTREAM_CHANNEL` (None: the listener
    reconnected; the rounds cover what it missed)."""
    account, _, task_id = (payload or "").partition(":")
    if account.isdigit() and task_id:
        worker.nudge(int(account), task_id)
