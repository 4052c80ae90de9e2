from __future__ import annotations

from fastapi import APIRouter, Request, Response

from screening.audit import service as audit
from screening.auth.dependencies import BEARER
from screening.dependencies import SessionDep
from screening.model import promotion
from screening.model.assessments import assess_screen_hot
from screening.model.dependencies import ModelDep, ModelReader
from screening.model.schemas import ActiveModelRead, AssessmentRead, DomainMetricsRead, ModelVersionRead
from screening.responses import json_response
from screening.screens.dependencies import HotRead

screens_router = APIRouter(prefix="/api/v1/screens", tags=["screens"])
router = APIRouter(prefix="/api/v1/models", tags=["models"])

_METRIC_KEYS = tuple(DomainMetricsRead.model_fields)


@screens_router.get("/{screen_id}/assessment", response_model=AssessmentRead, openapi_extra=BEARER)
async def get_assessment(screen_id: str, hot: HotRead) -> Response:
    """Per-domain probability, threshold decision and exact explanation, with the model version used."""
    # At driver level, as the screen itself (screening.screens.router).
    return json_response(await assess_screen_hot(hot, screen_id))


@router.get("", response_model=list[ModelVersionRead])
def list_models(session: SessionDep, user: ModelReader) -> list[ModelVersionRead]:
    """Promoted models, newest first; at most one is active."""
    audit.record(session, user.actor, "models.list", "model")
    return [ModelVersionRead.model_validate(v) for v in promotion.list_versions(session)]


@router.get("/active", response_model=ActiveModelRead)
def active_model(request: Request, model: ModelDep, user: ModelReader) -> ActiveModelRead:
    """The model this instance is serving, where it came from, and its recorded figures."""
    m = model.manifest
    return ActiveModelRead(
        version=model.version,
        sha256=model.sha256,
        source=request.app.state.model_source,
        contract_hash=m["contract_hash"],
        created_by=m.get("created_by"),
        thresholds=model.thresholds,
        metrics={
            d: DomainMetricsRead(**{k: v for k, v in dm.items() if k in _METRIC_KEYS}) for d, dm in m.get("metrics", {}).items()
        },
    )
