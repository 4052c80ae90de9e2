"""FHIR export and import for screens: loads what the pure builders need and records the audit trail."""

from __future__ import annotations

from sqlalchemy.orm import Session

from screening.audit import service as audit
from screening.auth.schemas import Principal
from screening.config import Settings
from screening.db import utcnow
from screening.errors import Forbidden, Invalid
from screening.fhir.bundle import Exporter, build_bundle, may_identify, pseudonymous_subject
from screening.fhir.questionnaire import Resource, build_questionnaire
from screening.fhir.response import answers_from_response, build_response
from screening.fhir.schemas import QuestionnaireResponseIn
from screening.instruments.registry import Registry
from screening.instruments.schemas import Instrument
from screening.screens import service as screens
from screening.screens.models import Screen, ScreenStatus


def exporter(settings: Settings) -> Exporter:
    return Exporter(base_url=settings.fhir_base_url, person_key=settings.person_key.get_secret_value().encode())


def questionnaire(registry: Registry, settings: Settings, instrument: Instrument) -> Resource:
    """The instrument as a FHIR Questionnaire."""
    return build_questionnaire(registry, settings.fhir_base_url, instrument)


def export_screen(
    session: Session, registry: Registry, settings: Settings, user: Principal, screen: Screen, *, identified: bool
) -> Resource:
    """The screen as a Bundle; identifiers only when asked for and allowed (`may_identify`)."""
    if identified:
        consent = screens.latest_consent(session, screen.id)
        if not may_identify(user.role, consent.share_with_health if consent else None):
            raise Forbidden("Identifiers may be exported only by the screen's nurse with consent to share with "
                            "health services; export without `identified=true` for a pseudonymised bundle.")
    bundle = build_bundle(registry, exporter(settings), screen, screens.answer_values(session, screen.id),
                          identified=identified, generated_at=utcnow())
    audit.record(session, user.actor, "screen.fhir.export", "screen", screen.id,
                 {"identified": identified, "resources": len(bundle.get("entry", []))})
    return bundle


def import_response(
    session: Session, registry: Registry, settings: Settings, user: Principal, screen: Screen,
    body: QuestionnaireResponseIn,
) -> Resource:
    """Merge a QuestionnaireResponse's answers into the screen, exactly as `PATCH /answers` would.

    Returns the instrument's response as now stored (the merged answers).
    """
    instrument, answers, errors = answers_from_response(registry, settings.fhir_base_url, body)
    if errors or instrument is None:
        raise Invalid("Invalid QuestionnaireResponse: " + ", ".join(e.field for e in errors), errors=errors)
    screen = screens.patch_answers(session, user, registry, screen, answers)
    audit.record(session, user.actor, "screen.fhir.import", "screen", screen.id,
                 {"instrument": instrument.id, "items": len(answers)})
    ex = exporter(settings)
    stored = screens.answer_values(session, screen.id)
    final = screen.status == ScreenStatus.final
    return build_response(
        registry, ex.base_url, instrument, stored,
        resource_id=ex.resource_id(screen.id, "response", instrument.id),
        status="completed" if final else "in-progress",
        subject=pseudonymous_subject(ex, screen),
        authored=screen.updated_at.isoformat(),
    )
