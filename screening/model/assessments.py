"""Assessing a stored screen with the served model, and recording which model said what."""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.orm import Session

from screening.audit import service as audit
from screening.auth.schemas import Principal
from screening.db import utcnow
from screening.instruments.registry import Registry
from screening.instruments.service import complete_scores
from screening.model.models import Assessment
from screening.model.schemas import AssessmentRead, DomainAssessmentRead, ModelRef
from screening.model.service import ModelBundle
from screening.screens.models import Screen
from screening.screens.service import age_on, current_answers

_RECORD = insert(Assessment.__table__)  # built once: every assessment shown is recorded


def assess_screen(session: Session, registry: Registry, bundle: ModelBundle, screen: Screen, user: Principal) -> AssessmentRead:
    """The model's view of a screen as it stands now; the model version is recorded with the result."""
    answers = {k: a.value for k, a in current_answers(session, screen.id).items()}
    # Age on the day of the screen, not today: the model was asked about the person in custody then.
    age = age_on(screen.date_of_birth, screen.created_at.date()) if screen.date_of_birth else None
    # Ethnicity is deliberately not passed: it is recorded for monitoring only, never a model input.
    result = bundle.assess(answers, age=age, sex=screen.sex)
    session.execute(_RECORD, [{
        "screen_id": screen.id,
        "model_version": bundle.version,
        "model_sha256": bundle.sha256,
        "assessed_at": utcnow(),
        "assessed_by_id": user.id,
        "result": {
            d: {"probability": a.probability, "threshold": a.threshold, "needs_assessment": a.needs_assessment}
            for d, a in result.items()
        },
    }])
    audit.record(session, user.actor, "screen.assessment", "screen", screen.id, {"model_version": bundle.version})
    return AssessmentRead(
        model=ModelRef(version=bundle.version, sha256=bundle.sha256),
        domains={d: DomainAssessmentRead.model_validate(a) for d, a in result.items()},
        instruments=complete_scores(registry, answers),
    )
