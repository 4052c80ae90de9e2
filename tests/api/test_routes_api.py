from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from screening.audit.models import AuditEntry
from screening.auth.models import Role
from screening.instruments.registry import load_registry
from screening.routes.models import NeedDecision, Referral, RouteDecision
from screening.routes.rulebook import load_rulebook
from tests.factories import answer, create_screen, give_consent, headers_for, make_user
from tests.routes import scenarios
from tests.routes.scenarios import (
    ACUTE_SUICIDAL_CRISIS,
    HOMELESS_YOUNG_ADULT,
    LEARNING_DISABILITY,
    NOTHING_FOUND,
    OPIATE_WITHDRAWAL,
    Scenario,
    decide_everything,
    finalise,
    open_screen,
)

PROBLEM = "application/problem+json"


def recs_url(screen_id: str) -> str:
    return f"/api/v1/screens/{screen_id}/recommendations"


def decision_url(screen_id: str, route: str) -> str:
    return f"/api/v1/screens/{screen_id}/recommendations/{route}/decision"


class TestCatalogue:
    def test_court_role_is_403(self, client: TestClient, session: Session) -> None:
        r = client.get("/api/v1/routes", headers=headers_for(client, make_user(session, Role.court)))
        assert r.status_code == 403

    def test_lists_routes_needs_and_reason_codes(self, client: TestClient, session: Session) -> None:
        r = client.get("/api/v1/routes", headers=headers_for(client, make_user(session)))
        assert r.status_code == 200
        body = r.json()
        assert {"route": "appropriate_adult", "title": "Appropriate adult", "kind": "custody"} in body["routes"]
        assert "mental_health" in {n["domain"] for n in body["needs"]}
        assert "clinical_judgement" in body["reason_codes"]
        assert body["provenance"]["directory_version"] == "1.0.0"


class TestGetRecommendations:
    def test_without_token_is_401(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, ACUTE_SUICIDAL_CRISIS)
        r = client.get(recs_url(sid))
        assert r.status_code == 401
        assert r.headers["content-type"] == PROBLEM

    @pytest.mark.parametrize("role", [Role.court, Role.data_scientist, Role.admin, Role.commissioner])
    def test_roles_other_than_nurse_are_403(self, client: TestClient, session: Session, role: Role) -> None:
        sid = open_screen(client, headers_for(client, make_user(session)), ACUTE_SUICIDAL_CRISIS)
        r = client.get(recs_url(sid), headers=headers_for(client, make_user(session, role)))
        assert r.status_code == 403
        assert r.headers["content-type"] == PROBLEM

    def test_nurse_of_another_suite_is_403(self, client: TestClient, session: Session) -> None:
        sid = open_screen(client, headers_for(client, make_user(session)), ACUTE_SUICIDAL_CRISIS)
        r = client.get(recs_url(sid), headers=headers_for(client, make_user(session, suites=["Bradford"])))
        assert r.status_code == 403

    def test_unknown_screen_is_404(self, client: TestClient, session: Session) -> None:
        r = client.get(recs_url("no-such-screen"), headers=headers_for(client, make_user(session)))
        assert r.status_code == 404
        assert r.headers["content-type"] == PROBLEM

    @pytest.mark.parametrize("scenario", scenarios.ALL, ids=lambda s: s.name)
    def test_realistic_screens_get_their_routes_most_urgent_first(
        self, client: TestClient, session: Session, scenario: Scenario
    ) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, scenario)
        recs = client.get(recs_url(sid), headers=h).json()
        assert [r["route"] for r in recs] == scenario.routes
        order = {"immediate": 0, "urgent": 1, "routine": 2}
        assert [order[r["urgency"]] for r in recs] == sorted(order[r["urgency"]] for r in recs)
        for rec in recs:
            assert set(rec) >= {"route", "title", "urgency", "reasons", "service", "decision"}
            assert rec["reasons"], f"{rec['route']} has no evidence"
            assert rec["decision"] is None
            assert rec["service"]["name"] and rec["service"]["contact"]

    def test_current_suicide_plan_is_immediate_and_cites_the_answer(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, ACUTE_SUICIDAL_CRISIS)
        crisis = next(r for r in client.get(recs_url(sid), headers=h).json() if r["route"] == "crisis_mental_health")
        assert crisis["urgency"] == "immediate"
        refs = {(x["source"], x["ref"]) for x in crisis["reasons"]}
        assert ("item", "risk_plan") in refs
        assert ("item", "risk_current_thoughts") in refs

    def test_instrument_and_age_evidence_are_cited(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, HOMELESS_YOUNG_ADULT)
        recs = {r["route"]: r for r in client.get(recs_url(sid), headers=h).json()}
        assert {"source": "age", "ref": "age"}.items() <= recs["young_adult_service"]["reasons"][0].items()
        assert "Aged 21" in recs["young_adult_service"]["reasons"][0]["text"]
        atr = recs["atr"]["reasons"][0]
        assert (atr["source"], atr["ref"]) == ("instrument", "audit")
        assert "possible dependence" in atr["text"]

    def test_a_child_always_gets_an_appropriate_adult(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, Scenario(name="child", age=16, sex="female", answers={}))
        routes = {r["route"]: r for r in client.get(recs_url(sid), headers=h).json()}
        assert set(routes) == {"appropriate_adult", "children_and_young_people"}
        assert routes["appropriate_adult"]["reasons"][0]["source"] == "age"

    def test_reading_is_audited_with_the_rules_version(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, OPIATE_WITHDRAWAL)
        client.get(recs_url(sid), headers=h)
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "routes.read")).one()
        assert entry.record_id == sid
        assert entry.detail["proposed"] == 3
        assert entry.detail["rules_version"] == "1.0.0" and len(entry.detail["rules_sha256"]) == 64


class TestDecideRoute:
    def test_without_token_is_401(self, client: TestClient, session: Session) -> None:
        sid = open_screen(client, headers_for(client, make_user(session)), LEARNING_DISABILITY)
        r = client.post(decision_url(sid, "appropriate_adult"), json={"decision": "accept"})
        assert r.status_code == 401

    def test_court_role_is_403(self, client: TestClient, session: Session) -> None:
        sid = open_screen(client, headers_for(client, make_user(session)), LEARNING_DISABILITY)
        court = headers_for(client, make_user(session, Role.court))
        r = client.post(decision_url(sid, "appropriate_adult"), json={"decision": "accept"}, headers=court)
        assert r.status_code == 403
        assert session.scalars(select(RouteDecision)).all() == []

    def test_invalid_body_names_the_fields(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, LEARNING_DISABILITY)
        r = client.post(decision_url(sid, "appropriate_adult"),
                        json={"decision": "maybe", "reason_code": "because", "colour": "red"}, headers=h)
        assert r.status_code == 422
        assert r.headers["content-type"] == PROBLEM
        assert {e["field"] for e in r.json()["errors"]} >= {"decision", "reason_code", "colour"}

    def test_unknown_route_is_404(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, LEARNING_DISABILITY)
        r = client.post(decision_url(sid, "astrology"), json={"decision": "accept"}, headers=h)
        assert r.status_code == 404

    def test_decline_needs_a_reason_code_and_a_note(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, LEARNING_DISABILITY)
        r = client.post(decision_url(sid, "learning_disability_team"), json={"decision": "decline", "note": "  "},
                        headers=h)
        assert r.status_code == 422
        assert {e["field"] for e in r.json()["errors"]} == {"reason_code", "note"}
        assert session.scalars(select(RouteDecision)).all() == []

    def test_accepting_a_service_route_makes_a_referral_with_provenance(
        self, client: TestClient, session: Session
    ) -> None:
        nurse = make_user(session, full_name="Sam Okafor")
        h = headers_for(client, nurse)
        sid = open_screen(client, h, OPIATE_WITHDRAWAL)
        r = client.post(decision_url(sid, "withdrawal_management"), json={"decision": "accept"}, headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["decision"]["decision"] == "accept"
        assert body["decision"]["decided_by"] == nurse.username
        assert body["urgency"] == "immediate" and body["proposed"] is True
        listed = client.get(recs_url(sid), headers=h).json()
        assert listed[0]["decision"]["decision"] == "accept"
        book = load_rulebook(load_registry())
        row = session.scalars(select(RouteDecision)).one()
        assert (row.rules_version, row.rules_sha256) == (book.rules_version, book.rules_sha256)
        assert (row.directory_version, row.directory_sha256) == (book.directory_version, book.directory_sha256)
        assert {"source": "item", "ref": "withdrawal_current_signs"} in row.evidence
        referral = session.scalars(select(Referral)).one()
        assert (referral.route, referral.status, referral.urgency) == ("withdrawal_management", "made", "immediate")
        assert referral.service_name == "Custody healthcare professional"

    def test_declining_withdraws_the_referral_and_keeps_the_history(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, OPIATE_WITHDRAWAL)
        client.post(decision_url(sid, "drug_alcohol_service"), json={"decision": "accept"}, headers=h)
        r = client.post(decision_url(sid, "drug_alcohol_service"),
                        json={"decision": "decline", "reason_code": "already_supported", "note": "Has a key worker."},
                        headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["decision"]["reason_code"] == "already_supported"
        assert session.scalars(select(Referral)).all() == []
        assert [d.decision for d in session.scalars(select(RouteDecision).order_by(RouteDecision.id))] == [
            "accept", "decline"]
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "route.decide")
                                  .order_by(AuditEntry.id)).all()
        assert [(e.record_id, e.detail["decision"], e.detail["reason_code"]) for e in entries] == [
            (sid, "accept", None), (sid, "decline", "already_supported")]
        assert "key worker" not in str([e.detail for e in entries])  # free text never goes into the audit trail

    def test_adding_a_route_not_proposed_needs_a_reason(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, LEARNING_DISABILITY)
        r = client.post(decision_url(sid, "housing_support"), json={"decision": "accept"}, headers=h)
        assert r.status_code == 422
        r = client.post(decision_url(sid, "housing_support"), headers=h, json={
            "decision": "accept", "reason_code": "clinical_judgement", "note": "Sofa-surfing since the autumn."})
        assert r.status_code == 200, r.text
        assert r.json()["proposed"] is False and r.json()["urgency"] is None
        listed = client.get(recs_url(sid), headers=h).json()
        assert listed[-1]["route"] == "housing_support" and listed[-1]["proposed"] is False
        assert session.scalars(select(Referral)).one().route == "housing_support"

    def test_declining_a_route_never_proposed_is_409(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, NOTHING_FOUND)
        r = client.post(decision_url(sid, "housing_support"), headers=h,
                        json={"decision": "decline", "reason_code": "other", "note": "n/a"})
        assert r.status_code == 409

    def test_final_screen_is_read_only(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, LEARNING_DISABILITY)
        finalise(client, h, sid)
        r = client.post(decision_url(sid, "appropriate_adult"), json={"decision": "accept"}, headers=h)
        assert r.status_code == 409
        assert r.headers["content-type"] == PROBLEM
        assert session.scalars(select(RouteDecision)).all() == []

    def test_court_options_make_no_referral(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, OPIATE_WITHDRAWAL)
        r = client.post(decision_url(sid, "drr"), json={"decision": "accept"}, headers=h)
        assert r.status_code == 200
        assert r.json()["kind"] == "court_option"
        assert session.scalars(select(Referral)).all() == []


class TestDecideNeed:
    def url(self, sid: str, domain: str) -> str:
        return f"/api/v1/screens/{sid}/needs/{domain}"

    def test_without_token_is_401(self, client: TestClient, session: Session) -> None:
        sid = open_screen(client, headers_for(client, make_user(session)), LEARNING_DISABILITY)
        assert client.put(self.url(sid, "learning_disability"), json={"need": True}).status_code == 401

    def test_court_role_is_403(self, client: TestClient, session: Session) -> None:
        sid = open_screen(client, headers_for(client, make_user(session)), LEARNING_DISABILITY)
        r = client.put(self.url(sid, "learning_disability"), json={"need": True},
                       headers=headers_for(client, make_user(session, Role.court)))
        assert r.status_code == 403

    def test_unknown_domain_is_404_and_bad_body_422(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, LEARNING_DISABILITY)
        assert client.put(self.url(sid, "horoscope"), json={"need": True}, headers=h).status_code == 404
        r = client.put(self.url(sid, "learning_disability"), json={"need": "perhaps"}, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "need"

    def test_confirming_the_proposal_needs_no_reason(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, LEARNING_DISABILITY)
        r = client.put(self.url(sid, "learning_disability"), json={"need": True}, headers=h)
        assert r.status_code == 200, r.text
        assert r.json() | {"decided_at": None} == r.json() | {
            "domain": "learning_disability", "proposed": True, "need": True, "overridden": False, "decided_at": None}

    def test_override_needs_a_reason_and_is_shown_side_by_side(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, LEARNING_DISABILITY)
        r = client.put(self.url(sid, "mental_health"), json={"need": True}, headers=h)
        assert r.status_code == 422
        assert {e["field"] for e in r.json()["errors"]} == {"reason_code", "note"}
        r = client.put(self.url(sid, "mental_health"), headers=h, json={
            "need": True, "reason_code": "clinical_judgement", "note": "Low mood and tearful throughout."})
        assert r.status_code == 200
        view = client.get(f"/api/v1/screens/{sid}/decisions", headers=h).json()
        mh = next(n for n in view["needs"] if n["domain"] == "mental_health")
        assert (mh["proposed"], mh["need"], mh["overridden"], mh["reason_code"]) == (
            False, True, True, "clinical_judgement")
        row = session.scalars(select(NeedDecision)).one()
        assert row.note == "Low mood and tearful throughout." and len(row.rules_sha256) == 64

    def test_final_screen_is_409(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, LEARNING_DISABILITY)
        finalise(client, h, sid)
        assert client.put(self.url(sid, "learning_disability"), json={"need": True}, headers=h).status_code == 409


class TestDecisionsView:
    def test_court_role_is_403(self, client: TestClient, session: Session) -> None:
        sid = open_screen(client, headers_for(client, make_user(session)), LEARNING_DISABILITY)
        r = client.get(f"/api/v1/screens/{sid}/decisions", headers=headers_for(client, make_user(session, Role.court)))
        assert r.status_code == 403

    def test_shows_proposed_and_decided_side_by_side(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, ACUTE_SUICIDAL_CRISIS)
        decide_everything(client, h, sid)
        view = client.get(f"/api/v1/screens/{sid}/decisions", headers=h).json()
        assert view["model_used"] is True
        assert view["model_version"] == client.app.state.model.version  # type: ignore[attr-defined]
        assert view["provenance"]["rules_version"] == "1.0.0"
        needs = {n["domain"]: n for n in view["needs"]}
        assert needs["mental_health"]["proposed"] and needs["mental_health"]["need"] is True
        assert needs["learning_disability"]["proposed"] is False and needs["learning_disability"]["need"] is None
        assert all(r["decision"]["decision"] == "accept" for r in view["routes"])


class TestModelOutputs:
    """The real served model's needs reach the rules, cited as model evidence, only where it was asked."""

    def test_model_need_is_cited_where_the_domain_was_asked(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, LEARNING_DISABILITY)
        bundle = client.app.state.model  # type: ignore[attr-defined]
        expected = bundle.assess(LEARNING_DISABILITY.answers, age=LEARNING_DISABILITY.age, sex="female")
        recs = {r["route"]: r for r in client.get(recs_url(sid), headers=h).json()}
        cited = {(x["source"], x["ref"]) for x in recs["learning_disability_team"]["reasons"]}
        assert (("model", "learning_disability") in cited) is expected["learning_disability"].needs_assessment
        view = client.get(f"/api/v1/screens/{sid}/decisions", headers=h).json()
        ld = next(n for n in view["needs"] if n["domain"] == "learning_disability")
        assert any(x["source"] == "model" for x in ld["reasons"]) is expected["learning_disability"].needs_assessment

    def test_a_domain_never_asked_gets_no_model_route(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, ACUTE_SUICIDAL_CRISIS)  # no learning disability or substance questions
        recs = client.get(recs_url(sid), headers=h).json()
        assert {"learning_disability_team", "drug_alcohol_service"}.isdisjoint(r["route"] for r in recs)
        assert all(x["ref"] != "learning_disability" for r in recs for x in r["reasons"])

    def test_decisions_record_the_model_version(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, LEARNING_DISABILITY)
        r = client.post(decision_url(sid, "appropriate_adult"), json={"decision": "accept"}, headers=h)
        assert r.status_code == 200
        row = session.scalars(select(RouteDecision)).one()
        assert row.model_version == client.app.state.model.version  # type: ignore[attr-defined]


class TestReferrals:
    def test_court_role_is_403(self, client: TestClient, session: Session) -> None:
        sid = open_screen(client, headers_for(client, make_user(session)), OPIATE_WITHDRAWAL)
        r = client.get(f"/api/v1/screens/{sid}/referrals", headers=headers_for(client, make_user(session, Role.court)))
        assert r.status_code == 403

    def test_outcomes_are_recorded_after_the_screen_is_final(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, OPIATE_WITHDRAWAL)
        decide_everything(client, h, sid)
        finalise(client, h, sid)
        referrals = client.get(f"/api/v1/screens/{sid}/referrals", headers=h).json()
        assert [x["route"] for x in referrals] == ["withdrawal_management", "drug_alcohol_service"]
        rid = referrals[1]["id"]
        url = f"/api/v1/screens/{sid}/referrals/{rid}"
        r = client.patch(url, json={"status": "attended"}, headers=h)
        assert r.status_code == 200, r.text
        r = client.patch(url, json={"status": "engaged"}, headers=h)
        assert r.status_code == 200
        assert [e["status"] for e in r.json()["history"]] == ["made", "attended", "engaged"]
        # Engaged is a final outcome: it does not go back.
        r = client.patch(url, json={"status": "made"}, headers=h)
        assert r.status_code == 409
        # The screen's answers stay read-only.
        r = client.patch(f"/api/v1/screens/{sid}/answers", json={"answers": {"dast10_1": False}}, headers=h)
        assert r.status_code == 409

    def test_invalid_outcome_is_422_and_unknown_referral_404(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, OPIATE_WITHDRAWAL)
        decide_everything(client, h, sid)
        rid = client.get(f"/api/v1/screens/{sid}/referrals", headers=h).json()[0]["id"]
        r = client.patch(f"/api/v1/screens/{sid}/referrals/{rid}", json={"status": "cured", "on": "2999-01-01"},
                         headers=h)
        assert r.status_code == 422
        assert {e["field"] for e in r.json()["errors"]} == {"status", "on"}
        r = client.patch(f"/api/v1/screens/{sid}/referrals/999999", json={"status": "attended"}, headers=h)
        assert r.status_code == 404


def test_routes_follow_the_answers_after_an_edit(client: TestClient, session: Session) -> None:
    """Recommendations are computed from the answers in force, so a corrected answer changes them."""
    h = headers_for(client, make_user(session))
    screen = create_screen(client, h)
    give_consent(client, h, screen["id"])
    answer(client, h, screen["id"], {"social_veteran": True})
    assert [r["route"] for r in client.get(recs_url(screen["id"]), headers=h).json()] == ["veterans_support"]
    answer(client, h, screen["id"], {"social_veteran": False})
    assert client.get(recs_url(screen["id"]), headers=h).json() == []
