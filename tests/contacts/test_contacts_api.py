from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from screening.app import create_app
from screening.audit.models import AuditEntry
from screening.auth.models import Role, User
from screening.config import Settings
from screening.db import utcnow
from screening.routes.models import NeedDecision, Referral, RouteDecision
from screening.screens.linkage import person_hash
from screening.screens.models import Screen
from screening.tables import Base
from tests.factories import answer, backdate, create_screen, earlier_contact, give_consent, headers_for, make_user
from tests.needs_answers import answers_for

PROBLEM = "application/problem+json"
REF = "2003/0123456X"
KEY_ONE, KEY_TWO = "key-one-" + "x" * 32, "key-two-" + "y" * 32
ROTATED = {"person_key": SecretStr(KEY_TWO), "person_key_previous": [SecretStr(KEY_ONE)]}


@contextmanager
def client_with(settings: Settings, **changes: object) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update=changes)), raise_server_exceptions=False) as c:
        yield c


def nurse_of(session: Session, suites: list[str] | None = None) -> User:
    """A nurse detached from the session, so reading her name later opens no transaction (SQLite lock)."""
    user = make_user(session, suites=suites)
    session.refresh(user)
    session.expunge(user)
    session.rollback()
    return user


def stored_hashes(session: Session) -> list[str | None]:
    session.expire_all()
    hashes = list(session.scalars(select(Screen.person_hash).order_by(Screen.created_at)))
    session.rollback()  # SQLite: every transaction holds the writer lock; release it for the app
    return hashes


class TestKeyRotation:
    def test_previous_key_still_links_and_old_rows_are_rekeyed(self, settings: Settings, session: Session) -> None:
        nurse = nurse_of(session)
        with client_with(settings, person_key=SecretStr("key-one-" + "x" * 32)) as c:
            first = create_screen(c, headers_for(c, nurse), person_ref=REF)
        backdate(session, first["id"], 30)
        with client_with(settings, **ROTATED) as c:
            second = create_screen(c, headers_for(c, nurse), person_ref="2003 0123456x")
            assert second["previous_contacts"] == 1
            # Converged: both rows now carry the current-key hash, so the old key is no longer needed.
            assert stored_hashes(session) == [person_hash("key-two-" + "y" * 32, REF)] * 2
            details = list(session.scalars(select(AuditEntry.detail).where(AuditEntry.action == "screen.person.rekey")))
            session.rollback()
            assert details == [{"screens": 1}]
        with client_with(settings, person_key=SecretStr("key-two-" + "y" * 32)) as c:
            third = create_screen(c, headers_for(c, nurse), person_ref=REF)
            assert third["previous_contacts"] == 2

    def test_a_different_key_does_not_link(self, settings: Settings, session: Session) -> None:
        nurse = nurse_of(session)
        with client_with(settings, person_key=SecretStr("key-one-" + "x" * 32)) as c:
            create_screen(c, headers_for(c, nurse), person_ref=REF)
        with client_with(settings, person_key=SecretStr("key-three-" + "z" * 32)) as c:
            assert create_screen(c, headers_for(c, nurse), person_ref=REF)["previous_contacts"] == 0
        assert len(set(stored_hashes(session))) == 2

    def test_other_people_are_not_rekeyed(self, settings: Settings, session: Session) -> None:
        nurse = nurse_of(session)
        with client_with(settings, person_key=SecretStr("key-one-" + "x" * 32)) as c:
            create_screen(c, headers_for(c, nurse), person_ref="1999/7654321A")
        with client_with(settings, **ROTATED) as c:
            assert create_screen(c, headers_for(c, nurse), person_ref=REF)["previous_contacts"] == 0
        assert stored_hashes(session)[0] == person_hash("key-one-" + "x" * 32, "1999/7654321A")

    def test_the_reference_is_nowhere_in_the_database(
        self, settings: Settings, session: Session, engine: Engine
    ) -> None:
        nurse = nurse_of(session)
        rotated = {"person_key_previous": [SecretStr("key-one-" + "x" * 32)]}
        with client_with(settings, **rotated) as c:
            h = headers_for(c, nurse)
            s = create_screen(c, h, person_ref=REF)
            c.get(f"/api/v1/screens/{s['id']}/contacts", headers=h)
        with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                dump = " ".join(str(row) for row in conn.execute(text(f'SELECT * FROM "{table.name}"'))).upper()
                assert "0123456" not in dump, table.name


class TestGetContacts:
    def test_without_token_is_401(self, client: TestClient, session: Session) -> None:
        s = create_screen(client, headers_for(client, make_user(session)), person_ref=REF)
        r = client.get(f"/api/v1/screens/{s['id']}/contacts")
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM

    def test_court_and_commissioner_are_403(self, client: TestClient, session: Session) -> None:
        s = create_screen(client, headers_for(client, make_user(session)), person_ref=REF)
        for role in (Role.court, Role.commissioner):
            r = client.get(f"/api/v1/screens/{s['id']}/contacts", headers=headers_for(client, make_user(session, role)))
            assert r.status_code == 403, role

    def test_nurse_of_another_suite_is_403_and_unknown_is_404(self, client: TestClient, session: Session) -> None:
        s = create_screen(client, headers_for(client, make_user(session)), person_ref=REF)
        bradford = headers_for(client, make_user(session, suites=["Bradford"]))
        assert client.get(f"/api/v1/screens/{s['id']}/contacts", headers=bradford).status_code == 403
        assert client.get("/api/v1/screens/no-such-screen/contacts", headers=bradford).status_code == 404

    def test_earlier_contacts_needs_and_flag_with_other_suites_redacted(
        self, client: TestClient, session: Session
    ) -> None:
        leeds = headers_for(client, make_user(session))
        bradford = headers_for(client, make_user(session, suites=["Bradford"]))
        earlier_contact(client, session, bradford, answers_for("mental_health", "housing"), 200, person_ref=REF,
                        custody_suite="Bradford")
        here = earlier_contact(client, session, leeds, answers_for("substance_misuse"), 40, person_ref=REF)
        too_old = create_screen(client, leeds, person_ref=REF)
        backdate(session, too_old["id"], 400)
        now = create_screen(client, leeds, person_ref=REF)
        give_consent(client, leeds, now["id"])
        answer(client, leeds, now["id"], answers_for("suicide_risk"))

        r = client.get(f"/api/v1/screens/{now['id']}/contacts", headers=leeds)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["previous_contacts"] == 2 and body["contacts_in_window"] == 3
        recent, older = body["earlier"]
        assert recent == {"date": recent["date"], "visible": True, "screen_id": here["id"],
                          "custody_suite": "Leeds Central", "status": "draft", "need_domains": ["substance_misuse"],
                          "confirmed_needs": [], "routes": [], "referral_outcomes": []}
        assert older["visible"] is False and older["screen_id"] is None and older["custody_suite"] is None
        assert older["need_domains"] == ["mental_health", "housing"]
        assert set(older) == {"date", "visible", "screen_id", "custody_suite", "status", "need_domains",
                              "confirmed_needs", "routes", "referral_outcomes"}
        assert body["need_domains_now"] == ["suicide_risk"]
        assert set(body["need_domains_recorded"]) == {"mental_health", "suicide_risk", "substance_misuse", "housing"}
        flag = body["multiple_complex_needs"]
        assert flag["flagged"] is True and len(flag["reasons"]) == 2
        assert flag["suggested_routes"] == ["link_worker", "integrated_offender_management"]
        # The pinned field on the screen agrees with the context.
        assert client.get(f"/api/v1/screens/{now['id']}", headers=leeds).json()["previous_contacts"] == 2

    def test_declined_contact_shows_no_needs_and_thresholds_come_from_settings(
        self, settings: Settings, session: Session
    ) -> None:
        nurse = nurse_of(session)
        with client_with(settings, mcn_min_contacts=2, mcn_housing_with_any=False) as c:
            h = headers_for(c, nurse)
            before = create_screen(c, h, person_ref=REF)
            give_consent(c, h, before["id"])
            answer(c, h, before["id"], answers_for("mental_health", "learning_disability"))
            give_consent(c, h, before["id"], screening=False)
            backdate(session, before["id"], 10)
            now = create_screen(c, h, person_ref=REF)
            give_consent(c, h, now["id"])
            answer(c, h, now["id"], answers_for("housing", "substance_misuse"))
            body = c.get(f"/api/v1/screens/{now['id']}/contacts", headers=h).json()
        assert body["earlier"][0]["status"] == "declined" and body["earlier"][0]["need_domains"] == []
        assert body["need_domains_recorded"] == ["substance_misuse", "housing"]
        assert body["multiple_complex_needs"]["flagged"] is True
        assert body["multiple_complex_needs"]["suggested_routes"][0] == "link_worker"
        assert "2+ contacts" in body["multiple_complex_needs"]["rule"]

    def test_unlinked_screen_has_no_contacts_and_no_flag(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h)
        give_consent(client, h, s["id"])
        answer(client, h, s["id"], answers_for("housing", "mental_health", "substance_misuse"))
        body = client.get(f"/api/v1/screens/{s['id']}/contacts", headers=h).json()
        assert body["linked"] is False and body["earlier"] == [] and body["contacts_in_window"] == 1
        assert body["multiple_complex_needs"]["flagged"] is False


class TestOutcomesInContext:
    def test_earlier_routes_confirmed_needs_and_referral_outcomes_are_shown(
        self, client: TestClient, session: Session
    ) -> None:
        leeds = headers_for(client, make_user(session))
        bradford_user = make_user(session, suites=["Bradford"])
        bradford = headers_for(client, bradford_user)
        before = create_screen(client, bradford, person_ref=REF, custody_suite="Bradford")
        backdate(session, before["id"], 90)
        made = (utcnow() - timedelta(days=90)).date()
        provenance = {"rules_version": "t", "rules_sha256": "0" * 64, "directory_version": "t",
                      "directory_sha256": "0" * 64}
        session.add_all([
            NeedDecision(screen_id=before["id"], domain="mental_health", proposed=True, need=True,
                         decided_by_id=bradford_user.id, **provenance),
            NeedDecision(screen_id=before["id"], domain="social", proposed=True, need=False,
                         reason_code="clinical_judgement", decided_by_id=bradford_user.id, **provenance),
            RouteDecision(screen_id=before["id"], route="community_mental_health", proposed=True, decision="accept",
                          decided_by_id=bradford_user.id, **provenance),
            RouteDecision(screen_id=before["id"], route="housing_support", proposed=True, decision="decline",
                          reason_code="already_supported", decided_by_id=bradford_user.id, **provenance),
            Referral(screen_id=before["id"], route="community_mental_health", urgency="routine", status="attended",
                     made_on=made, outcome_on=made + timedelta(days=7), made_by_id=bradford_user.id,
                     updated_by_id=bradford_user.id),
        ])
        session.commit()
        now = create_screen(client, leeds, person_ref=REF)
        body = client.get(f"/api/v1/screens/{now['id']}/contacts", headers=leeds).json()
        (earlier,) = body["earlier"]
        assert earlier["visible"] is False and earlier["screen_id"] is None
        assert earlier["confirmed_needs"] == ["mental_health"]
        assert earlier["routes"] == ["community_mental_health"]
        assert earlier["referral_outcomes"] == [{"route": "community_mental_health", "status": "attended",
                                                 "made_on": made.isoformat(),
                                                 "outcome_on": (made + timedelta(days=7)).isoformat()}]
