"""Operations: health probes, Prometheus metrics, structured logs and the request middleware."""

from __future__ import annotations

import gc

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from screening.config import Settings
from screening.ops.logging import lean_records
from screening.ops.metrics import ServiceCollector
from screening.ops.middleware import RequestMiddleware
from screening.ops.router import router
from screening.ops.service import model_version


def install(app: FastAPI, settings: Settings) -> None:
    """Probes, /metrics and the request middleware (request id, latency by route, request log)."""
    app.state.service_metrics = CollectorRegistry()
    app.state.service_metrics.register(
        ServiceCollector(lambda: getattr(app.state, "session_factory", None), lambda: model_version(app.state))
    )
    app.add_middleware(RequestMiddleware, log_requests=settings.log_requests)
    app.include_router(router)


def built_app() -> FastAPI:
    """The app as `screening serve` runs it: built, with the log records made lean (`lean_records`: a switch of
    the process's logging module, so set where the server starts, not in every app a test builds), and with
    everything built so far frozen out of the garbage collector's way.

    All of it (schemas, routes: ~120k objects) lives as long as the process. Left to the collector, every full
    collection walked it: 70-120 ms pauses of the event loop under load. Frozen, it is never walked again, nor
    copied into each forked worker by the collector touching it. `screening serve` switched the collector off
    for the import; from here it runs. (No collection before freezing: it found 13 unreachable objects.)
    """
    from screening.app import create_app

    lean_records()
    app = create_app()
    gc.freeze()
    gc.enable()
    return app
