"""The routes engine proposes the revolving-door routes, and the age routes issue 8 relies on."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from screening.db import utcnow
from screening.screens.models import Screen
from tests.factories import answer, create_screen, give_consent, headers_for, make_user
from tests.needs_answers import answers_for

REF = "1987/0044556Z"


def recommended(client: TestClient, headers: dict[str, str], screen_id: str) -> dict[str, dict]:
    r = client.get(f"/api/v1/screens/{screen_id}/recommendations", headers=headers)
    assert r.status_code == 200, r.text
    return {rec["route"]: rec for rec in r.json()}


def contact(client: TestClient, session: Session, h: dict[str, str], days_ago: int, *domains: str) -> str:
    s = create_screen(client, h, person_ref=REF)
    give_consent(client, h, s["id"])
    if domains:
        answer(client, h, s["id"], answers_for(*domains))
    if days_ago:
        session.execute(update(Screen).where(Screen.id == s["id"]).values(created_at=utcnow() - timedelta(days=days_ago)))
        session.commit()
    return str(s["id"])


class TestRevolvingDoorRoutes:
    def test_third_contact_with_two_needs_proposes_link_worker_and_iom(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        contact(client, session, h, 120, "mental_health")
        contact(client, session, h, 60, "substance_misuse")
        now = contact(client, session, h, 0)
        recs = recommended(client, h, now)
        assert {"link_worker", "integrated_offender_management"} <= set(recs)
        assert recs["link_worker"]["reasons"][0]["source"] == "contacts"
        assert "3 contacts in 12 months" in recs["link_worker"]["reasons"][0]["text"]

    def test_repeat_contact_with_housing_proposes_link_worker_only(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        contact(client, session, h, 30, "housing")
        now = contact(client, session, h, 0, "learning_disability")
        recs = recommended(client, h, now)
        assert "link_worker" in recs and "integrated_offender_management" not in recs

    def test_first_contact_proposes_neither(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        now = contact(client, session, h, 0, "housing", "mental_health", "substance_misuse")
        assert not {"link_worker", "integrated_offender_management"} & set(recommended(client, h, now))


class TestAgeRoutes:
    def test_young_adult_gets_the_young_adult_route(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h, date_of_birth=(date.today() - timedelta(days=365 * 20)).isoformat())
        assert "young_adult_service" in recommended(client, h, s["id"])

    def test_under_18_gets_the_youth_route_and_an_appropriate_adult(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h, date_of_birth=(date.today() - timedelta(days=365 * 16)).isoformat())
        recs = recommended(client, h, s["id"])
        assert {"children_and_young_people", "appropriate_adult"} <= set(recs)
        assert "young_adult_service" not in recs

    def test_adult_over_25_gets_neither(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h, date_of_birth="1970-05-05")
        assert not {"young_adult_service", "children_and_young_people"} & set(recommended(client, h, s["id"]))
