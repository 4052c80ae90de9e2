"""The recommendations an assessment carries: the same as the routes endpoint's, read at driver level.

`GET /screens/{id}/assessment` answers with the model's view and the recommended routes in one response (issue
7: "three domains, exact explanations, recommendations, the read audited"). Its routes come from the hot path
(`screening.routes.hot`), the routes endpoint's from the ORM (`screening.routes.service`): each test compares the
two on the real database, through decisions, additions, answer changes and linked earlier contacts.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from screening.audit.models import AuditEntry
from tests.factories import answer, create_screen, earlier_contact, give_consent, headers_for, make_user
from tests.needs_answers import answers_for
from tests.routes import scenarios
from tests.routes.scenarios import Scenario, open_screen

REF = "2003/0123456X"


def both(client: TestClient, headers: dict[str, str], screen_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the assessment's recommendations, the routes endpoint's), each checked for a 200."""
    a = client.get(f"/api/v1/screens/{screen_id}/assessment", headers=headers)
    assert a.status_code == 200, a.text
    r = client.get(f"/api/v1/screens/{screen_id}/recommendations", headers=headers)
    assert r.status_code == 200, r.text
    return a.json()["recommendations"], r.json()


def decide(client: TestClient, headers: dict[str, str], screen_id: str, route: str, body: dict[str, Any]) -> None:
    r = client.post(f"/api/v1/screens/{screen_id}/recommendations/{route}/decision", json=body, headers=headers)
    assert r.status_code == 200, r.text


class TestSameAsTheRoutesEndpoint:
    @pytest.mark.parametrize("scenario", scenarios.ALL, ids=lambda s: s.name)
    def test_through_decisions_additions_and_answer_changes(
        self, client: TestClient, session: Session, scenario: Scenario
    ) -> None:
        me = headers_for(client, make_user(session))
        colleague = headers_for(client, make_user(session))
        sid = open_screen(client, me, scenario)
        from_assessment, from_routes = both(client, me, sid)
        assert from_assessment == from_routes
        assert [r["route"] for r in from_routes] == scenario.routes

        proposed = [r["route"] for r in from_routes]
        catalogue = [r["route"] for r in client.get("/api/v1/routes", headers=me).json()["routes"]]
        added = next(r for r in catalogue if r not in proposed)
        decide(client, me, sid, added, {"decision": "accept", "reason_code": "clinical_judgement", "note": "Asked for it."})
        if proposed:
            decide(client, me, sid, proposed[0], {"decision": "accept"})
            # A colleague changes her mind for her: the later decision is the one in force, with its author.
            decide(client, colleague, sid, proposed[0],
                   {"decision": "decline", "reason_code": "already_supported", "note": "Has a care coordinator."})
        from_assessment, from_routes = both(client, me, sid)
        assert from_assessment == from_routes
        assert from_routes[-1]["route"] == added and from_routes[-1]["proposed"] is False
        if proposed:
            assert from_routes[0]["decision"]["decision"] == "decline"
            assert from_routes[0]["decision"]["decided_by"] != from_routes[-1]["decision"]["decided_by"]

        # New answers: nothing remembered from the screen as it was may be shown.
        answer(client, me, sid, answers_for("housing", "substance_misuse"))
        from_assessment, from_routes = both(client, me, sid)
        assert from_assessment == from_routes
        assert next(r for r in from_routes if r["route"] == "housing_support")["proposed"] is True

    def test_linked_screen_reads_its_earlier_contacts(self, client: TestClient, session: Session) -> None:
        """Multiple and complex needs across contacts in other suites, one of them declined (its answers unused)."""
        leeds = headers_for(client, make_user(session))
        bradford = headers_for(client, make_user(session, suites=["Bradford"]))
        earlier_contact(client, session, bradford, answers_for("mental_health", "housing"), 200, person_ref=REF,
                        custody_suite="Bradford")
        withdrawn = earlier_contact(client, session, leeds, answers_for("learning_disability"), 30, person_ref=REF)
        give_consent(client, leeds, withdrawn["id"], screening=False)
        now = create_screen(client, leeds, person_ref=REF)
        give_consent(client, leeds, now["id"])
        answer(client, leeds, now["id"], answers_for("substance_misuse"))

        from_assessment, from_routes = both(client, leeds, now["id"])
        assert from_assessment == from_routes
        mcn = [r for r in from_routes if any(x["ref"] == "multiple_complex_needs" for x in r["reasons"])]
        assert mcn, "three contacts with mental health, housing and substance needs: the rules' MCN condition holds"

        # The same answers on an unlinked screen: no earlier contacts, so no MCN reason.
        alone = create_screen(client, leeds)
        give_consent(client, leeds, alone["id"])
        answer(client, leeds, alone["id"], answers_for("substance_misuse"))
        from_assessment, from_routes = both(client, leeds, alone["id"])
        assert from_assessment == from_routes
        assert not any(x["ref"] == "multiple_complex_needs" for r in from_routes for x in r["reasons"])


class TestAudited:
    def test_the_read_records_what_was_proposed_and_under_which_rules(
        self, client: TestClient, session: Session
    ) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, scenarios.ACUTE_SUICIDAL_CRISIS)
        body = client.get(f"/api/v1/screens/{sid}/assessment", headers=h).json()
        catalogue = client.get("/api/v1/routes", headers=h).json()["provenance"]
        session.rollback()
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "screen.assessment",
                                                         AuditEntry.record_id == sid)).one()
        assert entry.detail["proposed"] == len(body["recommendations"]) > 0
        assert entry.detail["model_version"] == body["model"]["version"]
        assert {k: entry.detail[k] for k in catalogue} == catalogue
