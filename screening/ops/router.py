"""Probes and metrics for the platform, outside /api/v1: no user token, never personal data."""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from screening.errors import Forbidden
from screening.ops import metrics, service
from screening.ops.schemas import Live, Ready

router = APIRouter(tags=["operations"])


@router.get("/health/live", response_model=Live)
async def live(request: Request) -> Live:
    """Liveness: the process answers. A failing probe means restart the instance."""
    return Live(version=request.app.version)


@router.get("/health/ready", response_model=Ready, responses={503: {"model": Ready}})
def ready(request: Request) -> Response:
    """Readiness: the database answers and the model (where the service has one) is loaded.

    A failing probe takes the instance out of the load balancer without restarting it.
    """
    checks = service.readiness(request.app.state)
    ok = all(v in ("ok", "absent") for v in checks.values())
    body = Ready(status="ready" if ok else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


def _may_scrape(request: Request) -> bool:
    settings = request.app.state.settings
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    header = request.headers.get("authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode()):
        return True
    host = request.client.host if request.client else None
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Left out of the OpenAPI schema: it is the platform's endpoint, not part of the API tablets use.
@router.get("/metrics", response_class=Response, include_in_schema=False)
def prometheus_metrics(request: Request) -> Response:
    """Prometheus metrics. From loopback, or with `Authorization: Bearer $SCREENING_METRICS_TOKEN`."""
    if not _may_scrape(request):
        raise Forbidden("Metrics are served to loopback or to a scraper holding the metrics token.")
    return Response(metrics.exposition(request.app.state.service_metrics), media_type=CONTENT_TYPE_LATEST)
