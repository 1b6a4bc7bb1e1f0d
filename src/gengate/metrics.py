"""Process-lifetime Prometheus metrics: what this process did since it started.

Cluster-wide figures (live jobs, the delivery log) are read from the database at each
scrape instead (see ``api/pages.py``); these counters are per process, as Prometheus
expects counters to be, and are summed across nodes by the server that scrapes them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.webhook_attempts = Counter(
            "gengate_webhook_attempts", "Webhook delivery attempts by this process, by outcome "
            "(delivered, retried: failed with attempts left, given_up: failed for good)",
            ["outcome"], registry=self.registry,
        )
        for outcome in ("delivered", "retried", "given_up"):
            self.webhook_attempts.labels(outcome)
        self.jobs_finished = Counter(
            "gengate_jobs_finished", "Jobs this process's worker ended, by status",
            ["status"], registry=self.registry,
        )
        for status in ("SUCCESS", "FAILED"):
            self.jobs_finished.labels(status)
