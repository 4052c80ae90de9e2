"""FHIR R4 endpoints: instrument Questionnaires, a screen as a Bundle, and QuestionnaireResponse import."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import JSONResponse

from screening.auth.dependencies import Authorize
from screening.auth.policy import Permission
from screening.auth.schemas import Principal
from screening.dependencies import RegistryDep, SessionDep, SettingsDep
from screening.fhir import service
from screening.fhir.schemas import FHIR_MEDIA_TYPE, QuestionnaireResponseIn
from screening.instruments.router import instrument_or_404
from screening.screens.dependencies import ReadableScreen, ScreenReader, ScreenWriter, WritableScreen

router = APIRouter(tags=["fhir"])
InstrumentReader = Annotated[Principal, Depends(Authorize(Permission.instruments_read))]


class FHIRResponse(JSONResponse):
    media_type = FHIR_MEDIA_TYPE


def _fhir(resource_type: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": f"A FHIR R4 {resource_type}.", "content": {FHIR_MEDIA_TYPE: {}}}}


@router.get("/api/v1/instruments/{instrument_id}/fhir", response_class=FHIRResponse, responses=_fhir("Questionnaire"))
def instrument_questionnaire(
    instrument_id: str, _: InstrumentReader, registry: RegistryDep, settings: SettingsDep
) -> FHIRResponse:
    """The instrument as a FHIR R4 Questionnaire (SDC extensions for skip logic and the total score)."""
    return FHIRResponse(service.questionnaire(registry, settings, instrument_or_404(registry, instrument_id)))


@router.get("/api/v1/screens/{screen_id}/fhir", response_class=FHIRResponse, responses=_fhir("Bundle"))
def screen_bundle(
    screen: ReadableScreen,
    session: SessionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    user: ScreenReader,
    identified: Annotated[bool, Query(description="Include the person's identifiers (needs consent to share "
                                                  "with health services); default: pseudonymised.")] = False,
) -> FHIRResponse:
    """The screen as a FHIR R4 Bundle: QuestionnaireResponses, total-score Observations, the subject."""
    return FHIRResponse(service.export_screen(session, registry, settings, user, screen, identified=identified))


# Plain application/json is accepted as well (FastAPI parses any JSON media type); say so in the API docs.
_ALSO_JSON = {"requestBody": {"content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/QuestionnaireResponseIn"}}}}}


@router.post("/api/v1/screens/{screen_id}/fhir", response_class=FHIRResponse, responses=_fhir("QuestionnaireResponse"),
             openapi_extra=_ALSO_JSON)
def import_questionnaire_response(
    body: Annotated[QuestionnaireResponseIn, Body(media_type=FHIR_MEDIA_TYPE)],
    screen: WritableScreen,
    session: SessionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    user: ScreenWriter,
) -> FHIRResponse:
    """Merge a QuestionnaireResponse's answers into the screen, validated as `PATCH /answers`; returns the
    instrument's response as now stored."""
    return FHIRResponse(service.import_response(session, registry, settings, user, screen, body))
