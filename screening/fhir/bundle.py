"""A whole screen as a FHIR R4 `Bundle` (type `collection`): responses, total-score Observations, subject.

Pure: built from a screen, its answers and the decision whether identifiers may go out, so the same
code makes the API's answer and the documented example.

Who the bundle is about: by default the subject is a pseudonym, an HMAC-SHA256 of the screen id under
`SCREENING_PERSON_KEY` (stable across exports of one screen, useless without the key, and not linkable
across custody episodes). Identifiers (custody record number, date of birth, sex, in a `Patient`
resource) go out only when asked for and allowed: see `may_identify`.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from screening.auth.models import Role
from screening.fhir import terminology as t
from screening.fhir.questionnaire import Resource
from screening.fhir.response import build_response
from screening.instruments.registry import Registry
from screening.instruments.schemas import Instrument, ScoreResult
from screening.instruments.service import complete_scores
from screening.screens.models import Screen, ScreenStatus


@dataclass(frozen=True)
class Exporter:
    """What every export needs from the settings: the canonical base URL and the pseudonym key."""

    base_url: str
    person_key: bytes

    def keyed(self, *parts: str) -> str:
        return hmac.new(self.person_key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()

    def resource_id(self, *parts: str) -> str:
        """A stable, keyed resource id: the same screen exports the same ids, which reveal nothing."""
        return str(uuid.UUID(hex=self.keyed("fhir-resource", *parts)[:32], version=4))

    def pseudonym(self, screen: Screen) -> str:
        return self.keyed("fhir-subject", screen.id)


def may_identify(role: str, share_with_health: bool | None) -> bool:
    """Identifiers may leave only for a nurse (who can see the screen: her own suite, checked on load)
    and only when the consent in force allows sharing with health services."""
    return role == Role.nurse and share_with_health is True


def pseudonymous_subject(ex: Exporter, screen: Screen) -> Resource:
    """A logical reference to the person by pseudonym, with no Patient resource behind it."""
    system = t.local_system(ex.base_url, "NamingSystem/pseudonym")
    return {"identifier": {"system": system, "value": ex.pseudonym(screen)}, "display": "Pseudonymised person"}


_GENDER = {"male": "male", "female": "female", "other": "other", "unknown": "unknown"}


def _patient(ex: Exporter, screen: Screen, patient_id: str) -> Resource:
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"system": t.local_system(ex.base_url, "NamingSystem/custody-record"),
                        "value": screen.custody_record}],
        "gender": _GENDER.get(screen.sex, "unknown"),
        "birthDate": screen.date_of_birth.isoformat(),
    }


def _observation(
    ex: Exporter, instrument: Instrument, result: ScoreResult, *, resource_id: str, status: str,
    subject: Resource, effective: str, derived_from: str,
) -> Resource:
    if instrument.id in t.TOTAL_CODES:
        code, display = t.TOTAL_CODES[instrument.id]
        coding = {"system": t.LOINC, "code": code, "display": display}
    else:
        coding = {"system": t.local_system(ex.base_url, "CodeSystem/instrument-totals"),
                  "code": f"{instrument.id}-total", "display": f"{instrument.title}: total score"}
    positive = {"code": "POS", "display": "Positive"} if result.positive else {"code": "NEG", "display": "Negative"}
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "status": status,
        "category": [{"coding": [{"system": t.OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}],
        "code": {"coding": [coding], "text": f"{instrument.title}: total score"},
        "subject": subject,
        "effectiveDateTime": effective,
        "valueQuantity": {"value": result.total, "unit": "{score}", "system": t.UCUM, "code": "{score}"},
        "interpretation": [{"coding": [{"system": t.INTERPRETATION, **positive}],
                            "text": result.band_label or ("Referral threshold met" if result.positive
                                                          else "Referral threshold not met")}],
        "note": [{"text": f"Referral threshold: {result.threshold}. Scored with definition version {result.version}."}],
        "derivedFrom": [{"reference": derived_from}],
    }


def build_bundle(
    registry: Registry,
    ex: Exporter,
    screen: Screen,
    answers: Mapping[str, Any],
    *,
    identified: bool,
    generated_at: datetime,
) -> Resource:
    """The screen as a Bundle: one QuestionnaireResponse per instrument with answers, one Observation per
    complete instrument total, and a Patient only when `identified`.

    AUDIT-C borrows AUDIT's items, so its answers travel in AUDIT's response and its Observation is
    derived from that response (no second copy of the same three answers).
    """
    final = screen.status == ScreenStatus.final
    authored = (screen.finalised_at or screen.updated_at).isoformat()
    entries: list[Resource] = []
    if identified:
        patient_id = ex.resource_id(screen.id, "patient")
        subject: Resource = {"reference": f"urn:uuid:{patient_id}"}
        entries.append({"fullUrl": f"urn:uuid:{patient_id}", "resource": _patient(ex, screen, patient_id)})
    else:
        subject = pseudonymous_subject(ex, screen)
    response_urls: dict[str, str] = {}
    for instrument in registry:
        if not instrument.owns_items or not any(it.id in answers for it in instrument.items):
            continue
        rid = ex.resource_id(screen.id, "response", instrument.id)
        response_urls[instrument.id] = f"urn:uuid:{rid}"
        entries.append({"fullUrl": f"urn:uuid:{rid}", "resource": build_response(
            registry, ex.base_url, instrument, answers, resource_id=rid,
            status="completed" if final else "in-progress", subject=subject, authored=authored)})
    for result in complete_scores(registry, answers):
        instrument = registry[result.instrument_id]
        owner = registry.owner[instrument.items[0].id]
        rid = ex.resource_id(screen.id, "observation", instrument.id)
        entries.append({"fullUrl": f"urn:uuid:{rid}", "resource": _observation(
            ex, instrument, result, resource_id=rid, status="final" if final else "preliminary",
            subject=subject, effective=authored, derived_from=response_urls[owner])})
    bundle: Resource = {
        "resourceType": "Bundle",
        "id": ex.resource_id(screen.id, "bundle"),
        "type": "collection",
        "timestamp": generated_at.isoformat(),
    }
    if entries:  # FHIR JSON forbids empty arrays
        bundle["entry"] = entries
    return bundle
