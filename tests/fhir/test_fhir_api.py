"""FHIR endpoints over the real app and database: access, validation, pseudonymisation and round trip.

Every resource the API produces, and every one the tests post, is validated with the fhir.resources R4B
models.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from screening.audit.models import AuditEntry
from screening.auth.models import Role
from screening.instruments.registry import load_registry
from screening.instruments.schemas import ItemType
from screening.screens.models import Answer
from tests.factories import answer, create_screen, give_consent, headers_for, make_user

PROBLEM = "application/problem+json"
FHIR = "application/fhir+json"
BASE = "https://ld-screening.invalid/fhir"
REGISTRY = load_registry()
R4B = {"QuestionnaireResponse": QuestionnaireResponse, "Observation": Observation, "Patient": Patient}


def all_answers(shift: int = 0) -> dict[str, Any]:
    """An answer to every item of every shipped instrument, varied so that no two items look alike."""
    out: dict[str, Any] = {}
    for k, (item_id, item) in enumerate(REGISTRY.items.items()):
        if item.type is ItemType.boolean:
            out[item_id] = (k + shift) % 3 == 0
        else:
            out[item_id] = (k + shift) % len(item.options)
    return out


def entries(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == resource_type]


def valid_bundle(r: Any) -> dict[str, Any]:
    """The response's Bundle, after checking its media type and validating it and every entry as R4."""
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == FHIR
    bundle: dict[str, Any] = r.json()
    Bundle.model_validate(bundle)
    for e in bundle.get("entry", []):
        R4B[e["resource"]["resourceType"]].model_validate(e["resource"])
    return bundle


def qr_for(instrument_id: str, answers: dict[str, Any]) -> dict[str, Any]:
    """A response as an outside system would send it, validated as R4 before it is posted."""
    items = []
    for item_id, value in answers.items():
        value_x = {"valueBoolean": value} if isinstance(value, bool) else value
        items.append({"linkId": item_id, "answer": [value_x]})
    body = {"resourceType": "QuestionnaireResponse", "status": "completed",
            "questionnaire": f"{BASE}/Questionnaire/{instrument_id}", "item": items}
    QuestionnaireResponse.model_validate(body)
    return body


def post(client: TestClient, h: dict[str, str], screen_id: str, body: dict[str, Any], media: str = FHIR) -> Any:
    return client.post(f"/api/v1/screens/{screen_id}/fhir", content=json.dumps(body),
                       headers=h | {"content-type": media})


def audit_actions(session: Session, screen_id: str) -> list[str]:
    actions = list(session.scalars(select(AuditEntry.action).where(AuditEntry.record_id == screen_id)
                                   .order_by(AuditEntry.id)))
    session.rollback()  # end the read: on SQLite every transaction holds the write lock (BEGIN IMMEDIATE)
    return actions


class TestInstrumentQuestionnaire:
    def test_without_token_is_401(self, client: TestClient) -> None:
        r = client.get("/api/v1/instruments/phq9/fhir")
        assert r.status_code == 401
        assert r.headers["content-type"] == PROBLEM

    def test_every_role_reads_every_instrument(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session, Role.court))
        for instrument in REGISTRY:
            r = client.get(f"/api/v1/instruments/{instrument.id}/fhir", headers=h)
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == FHIR
            q = r.json()
            Questionnaire.model_validate(q)
            assert q["url"] == f"{BASE}/Questionnaire/{instrument.id}"
            assert [i["linkId"] for i in q["item"] if i["type"] != "display"][:-1] == [it.id for it in instrument.items]

    def test_unknown_instrument_is_404(self, client: TestClient, session: Session) -> None:
        r = client.get("/api/v1/instruments/nope/fhir", headers=headers_for(client, make_user(session)))
        assert r.status_code == 404
        assert r.headers["content-type"] == PROBLEM


class TestScreenBundle:
    def test_without_token_is_401(self, client: TestClient, session: Session) -> None:
        s = create_screen(client, headers_for(client, make_user(session)))
        assert client.get(f"/api/v1/screens/{s['id']}/fhir").status_code == 401

    def test_court_and_other_suites_are_403(self, client: TestClient, session: Session) -> None:
        s = create_screen(client, headers_for(client, make_user(session)))
        for user in (make_user(session, Role.court), make_user(session, suites=["Bradford"])):
            r = client.get(f"/api/v1/screens/{s['id']}/fhir", headers=headers_for(client, user))
            assert r.status_code == 403
            assert r.headers["content-type"] == PROBLEM

    def test_pseudonymised_by_default_with_loinc_totals(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h, custody_record="CR/77777/26", date_of_birth="1984-07-09")
        give_consent(client, h, s["id"])  # even with consent to share, identifiers go only when asked for
        phq9 = {f"phq9_{i}": 2 for i in range(1, 10)}
        answer(client, h, s["id"], phq9 | {"dast10_1": True})
        r = client.get(f"/api/v1/screens/{s['id']}/fhir", headers=h)
        bundle = valid_bundle(r)
        text = r.text
        assert "CR/77777/26" not in text and "1984-07-09" not in text and s["id"] not in text
        assert entries(bundle, "Patient") == []
        subjects = {json.dumps(res["subject"], sort_keys=True) for e in bundle["entry"] for res in [e["resource"]]}
        assert len(subjects) == 1
        (subject,) = [json.loads(x) for x in subjects]
        assert subject["identifier"]["system"] == f"{BASE}/NamingSystem/pseudonym"
        assert len(subject["identifier"]["value"]) == 64
        assert sorted(q["questionnaire"] for q in entries(bundle, "QuestionnaireResponse")) == [
            f"{BASE}/Questionnaire/dast10|1.0.0", f"{BASE}/Questionnaire/phq9|1.0.0"]
        (obs,) = entries(bundle, "Observation")  # DAST-10 is incomplete: no total
        assert obs["code"]["coding"][0]["system"] == "http://loinc.org"
        assert obs["code"]["coding"][0]["code"] == "44261-6"
        assert obs["valueQuantity"]["value"] == 18
        assert obs["status"] == "preliminary"
        assert obs["interpretation"][0]["coding"][0]["code"] == "POS"
        assert audit_actions(session, s["id"])[-1] == "screen.fhir.export"
        # Stable: a second export of the unchanged screen has the same resource ids and pseudonym.
        again = client.get(f"/api/v1/screens/{s['id']}/fhir", headers=h).json()
        assert [e["fullUrl"] for e in again["entry"]] == [e["fullUrl"] for e in bundle["entry"]]

    def test_identifiers_with_consent_to_share_with_health(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h, custody_record="CR/88888/26", date_of_birth="1979-01-30", sex="female")
        give_consent(client, h, s["id"], share_with_health=True, share_with_court=False)
        answer(client, h, s["id"], {"gad7_1": 1})
        bundle = valid_bundle(client.get(f"/api/v1/screens/{s['id']}/fhir?identified=true", headers=h))
        (patient,) = entries(bundle, "Patient")
        assert patient["identifier"][0]["value"] == "CR/88888/26"
        assert patient["birthDate"] == "1979-01-30"
        assert patient["gender"] == "female"
        (qr,) = entries(bundle, "QuestionnaireResponse")
        assert qr["subject"] == {"reference": f"urn:uuid:{patient['id']}"}
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "screen.fhir.export")).one()
        assert entry.detail == {"identified": True, "resources": 2}

    def test_identifiers_without_that_consent_are_403(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        no_consent = create_screen(client, h)
        declined_sharing = create_screen(client, h)
        give_consent(client, h, declined_sharing["id"], share_with_health=False)
        for s in (no_consent, declined_sharing):
            r = client.get(f"/api/v1/screens/{s['id']}/fhir?identified=true", headers=h)
            assert r.status_code == 403
            assert r.headers["content-type"] == PROBLEM
            assert "CR/" not in r.text
        # Pseudonymised export is still allowed; a screen without answers is an empty collection.
        empty = valid_bundle(client.get(f"/api/v1/screens/{no_consent['id']}/fhir", headers=h))
        assert "entry" not in empty


class TestImportResponse:
    def test_without_token_is_401(self, client: TestClient, session: Session) -> None:
        s = create_screen(client, headers_for(client, make_user(session)))
        assert post(client, {}, s["id"], qr_for("gad7", {})).status_code == 401

    def test_court_role_is_403(self, client: TestClient, session: Session) -> None:
        s = create_screen(client, headers_for(client, make_user(session)))
        r = post(client, headers_for(client, make_user(session, Role.court)), s["id"], qr_for("gad7", {}))
        assert r.status_code == 403

    def test_unknown_link_id_and_invalid_answers_are_named(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h)
        body = qr_for("gad7", {
            "gad7_1": {"valueCoding": {"system": "http://loinc.org", "code": "LA6569-3"}},  # valid
            "gad7_2": {"valueCoding": {"system": "http://loinc.org", "code": "LA9999-9"}},  # not an option
            "gad7_3": {"valueInteger": 2},  # wrong type for a choice item
            "phq9_1": {"valueCoding": {"system": "http://loinc.org", "code": "LA6569-3"}},  # another instrument's
        })
        r = post(client, h, s["id"], body)
        assert r.status_code == 422
        assert r.headers["content-type"] == PROBLEM
        fields = {e["field"]: e["message"] for e in r.json()["errors"]}
        assert set(fields) == {"item.gad7_2", "item.gad7_3", "item.phq9_1"}
        assert "unknown linkId" in fields["item.phq9_1"]
        assert session.scalars(select(Answer).where(Answer.screen_id == s["id"])).all() == []

    def test_unknown_questionnaire_and_other_resources_are_422(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h)
        other = qr_for("gad7", {}) | {"questionnaire": "http://loinc.org/q/44249-1"}
        r = post(client, h, s["id"], other)
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "questionnaire"
        r = post(client, h, s["id"], {"resourceType": "Patient", "questionnaire": "x", "status": "completed"})
        assert r.status_code == 422
        assert "resourceType" in {e["field"] for e in r.json()["errors"]}

    def test_final_screen_is_409(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h)
        give_consent(client, h, s["id"])
        assert client.post(f"/api/v1/screens/{s['id']}/finalise", headers=h).status_code == 200
        r = post(client, h, s["id"], qr_for("dast10", {"dast10_1": True}))
        assert r.status_code == 409
        assert r.headers["content-type"] == PROBLEM

    def test_merges_answers_as_patch_does(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h)
        answer(client, h, s["id"], {"phq9_1": 1, "audit_1": 0})
        body = qr_for("auditc", {
            "audit_1": {"valueCoding": {"system": f"{BASE}/CodeSystem/answers", "code": "audit_1-4"}},
            "audit_2": {"valueCoding": {"code": "audit_2-1"}},  # system may be left out
            "audit_3": {"valueCoding": {"code": "audit_3-0"}},
            "auditc_total": {"valueInteger": 12},  # calculated: accepted, never trusted
        })
        r = post(client, h, s["id"], body, media="application/json")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == FHIR
        merged = r.json()
        QuestionnaireResponse.model_validate(merged)
        assert [i["linkId"] for i in merged["item"]] == ["audit_1", "audit_2", "audit_3", "auditc_total"]
        assert merged["item"][-1]["answer"] == [{"valueInteger": 5}]
        screen = client.get(f"/api/v1/screens/{s['id']}", headers=h).json()
        assert screen["answers"] == {"phq9_1": 1, "audit_1": 4, "audit_2": 1, "audit_3": 0}
        assert screen["revisions"]["audit_1"] == 2
        actions = audit_actions(session, s["id"])
        assert actions[-3:-1] == ["screen.answers.update", "screen.fhir.import"]  # then the GET above


class TestRoundTrip:
    def test_export_import_export_gives_identical_answers(self, client: TestClient, session: Session) -> None:
        """Every shipped instrument: its answers leave in a response, come back into a new screen, and leave
        again unchanged, with the same totals."""
        h = headers_for(client, make_user(session))
        first = create_screen(client, h)
        answers = all_answers(shift=1)
        answer(client, h, first["id"], answers)
        exported = valid_bundle(client.get(f"/api/v1/screens/{first['id']}/fhir", headers=h))
        responses = entries(exported, "QuestionnaireResponse")
        owning = [i.id for i in REGISTRY if i.owns_items]
        assert [r["questionnaire"].split("/")[-1].split("|")[0] for r in responses] == owning
        assert {o["code"]["text"] for o in entries(exported, "Observation")} == {
            f"{i.title}: total score" for i in REGISTRY}

        second = create_screen(client, h)
        for qr in responses:
            QuestionnaireResponse.model_validate(qr)
            assert post(client, h, second["id"], qr).status_code == 200
        again = valid_bundle(client.get(f"/api/v1/screens/{second['id']}/fhir", headers=h))

        assert client.get(f"/api/v1/screens/{second['id']}", headers=h).json()["answers"] == answers
        assert [r["item"] for r in entries(again, "QuestionnaireResponse")] == [r["item"] for r in responses]
        def totals(b: dict[str, Any]) -> list[tuple[str, int]]:
            return [(o["code"]["coding"][0]["code"], o["valueQuantity"]["value"]) for o in entries(b, "Observation")]
        assert totals(again) == totals(exported)
