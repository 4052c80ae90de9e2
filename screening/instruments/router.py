from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from screening.auth.dependencies import Authorize
from screening.auth.policy import Permission
from screening.auth.schemas import Principal
from screening.dependencies import RegistryDep
from screening.errors import Invalid, NotFound
from screening.instruments.registry import Registry
from screening.instruments.schemas import Instrument, ScoreResult
from screening.instruments.scoring import score
from screening.instruments.service import instrument_answer_errors

router = APIRouter(prefix="/api/v1/instruments", tags=["instruments"])
Reader = Annotated[Principal, Depends(Authorize(Permission.instruments_read))]


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answers: dict[str, Any] = Field(
        description="Every item of the instrument: option index (int) for ordinal items, true/false for yes/no items."
    )


def instrument_or_404(registry: Registry, instrument_id: str) -> Instrument:
    inst = registry.get(instrument_id)
    if inst is None:
        raise NotFound(f"No instrument with id {instrument_id!r}.")
    return inst


@router.get("", response_model=list[Instrument])
def list_instruments(_: Reader, registry: RegistryDep) -> list[Instrument]:
    """Every instrument definition, with items, options and their points."""
    return list(registry)


@router.get("/{instrument_id}", response_model=Instrument)
def get_instrument(instrument_id: str, _: Reader, registry: RegistryDep) -> Instrument:
    """One instrument definition."""
    return instrument_or_404(registry, instrument_id)


@router.post("/{instrument_id}/score", response_model=ScoreResult)
def score_instrument(instrument_id: str, body: ScoreRequest, _: Reader, registry: RegistryDep) -> ScoreResult:
    """Score a complete set of answers for one instrument: total, band and referral threshold."""
    inst = instrument_or_404(registry, instrument_id)
    errors = instrument_answer_errors(inst, body.answers)
    if errors:
        raise Invalid(f"Invalid answers for {inst.id}: " + ", ".join(e.field for e in errors), errors=errors)
    return score(inst, body.answers)
