"""Prometheus metrics: request latency by route template, screens by status, the active model.

With several worker processes, set PROMETHEUS_MULTIPROC_DIR (`screening serve` does it) before the
first import of prometheus_client: each worker then writes its samples to files there and a scrape
of any worker adds them all up. Screens by status and the model version are read at scrape time,
so they are the same whichever worker answers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from screening.screens.models import Screen, ScreenStatus

# A nurse's tap should answer in tens of milliseconds: the buckets are dense below 100 ms.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

REQUEST_LATENCY = Histogram(
    "screening_http_request_duration_seconds",
    "Time to answer a request, by route template (never the raw path).",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
REQUESTS_IN_ERROR = Counter(
    "screening_http_server_errors",
    "Requests answered with a 5xx status, by route template.",
    ["method", "route"],
)
DATABASE_UNAVAILABLE = Counter(
    "screening_database_unavailable",
    "Requests answered 503 because the database did not answer in time, by route template and the error met (the "
    "driver's class: PoolTimeout, LockNotAvailable, OperationalError...).",
    ["method", "route", "error"],
)


class ServiceCollector(Collector):
    """Figures read from the database and the app at scrape time."""

    def __init__(
        self, session_factory: Callable[[], sessionmaker[Session] | None], model_version: Callable[[], str | None]
    ) -> None:
        self._session_factory = session_factory
        self._model_version = model_version

    def collect(self) -> Iterator[Any]:
        factory = self._session_factory()
        if factory is not None:
            screens = GaugeMetricFamily("screening_screens", "Screens by status.", labels=["status"])
            with factory() as session:
                rows = session.execute(select(Screen.status, func.count()).group_by(Screen.status)).tuples().all()
            counts = dict(rows)
            for status in ScreenStatus:
                screens.add_metric([status.value], counts.get(status.value, 0))
            yield screens
        version = self._model_version()
        info = InfoMetricFamily("screening_model", "The model version being served.")
        info.add_metric([], {"version": version or "none"})
        yield info


def exposition(service_registry: CollectorRegistry) -> bytes:
    """The text exposition: this process's (or all workers') request metrics plus the service figures."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        process_registry = CollectorRegistry()
        MultiProcessCollector(process_registry)  # type: ignore[no-untyped-call]  # prometheus_client's
    else:
        process_registry = REGISTRY
    return generate_latest(process_registry) + generate_latest(service_registry)
