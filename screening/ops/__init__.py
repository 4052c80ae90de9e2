"""Operations: health probes, Prometheus metrics, structured logs and the request middleware."""

from __future__ import annotations

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
    lean_records()
    app.add_middleware(RequestMiddleware, log_requests=settings.log_requests)
    app.include_router(router)
