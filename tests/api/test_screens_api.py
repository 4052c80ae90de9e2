from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from screening.auth.models import Role
from screening.db import utcnow
from screening.errors import Conflict
from screening.screens.models import Answer, AnswerEvent, Screen
from screening.screens.service import merge_answers
from screening.screens.store import StoredAnswer
from tests.factories import answer, create_screen, give_consent, headers_for, make_user, screen_body

PROBLEM = "application/problem+json"


class TestCreateScreen:
    def test_without_token_is_401(self, client: TestClient) -> None:
        r = client.post("/api/v1/screens", json=screen_body())
        assert r.status_code == 401
        assert r.headers["content-type"] == PROBLEM

    def test_court_role_is_403(self, client: TestClient, session: Session) -> None:
        court = make_user(session, Role.court)
        r = client.post("/api/v1/screens", json=screen_body(), headers=headers_for(client, court))
        assert r.status_code == 403
        assert r.headers["content-type"] == PROBLEM

    def test_creates_a_draft(self, client: TestClient, session: Session) -> None:
        nurse = make_user(session)
        s = create_screen(client, headers_for(client, nurse), date_of_birth="2000-02-29")
        assert s["status"] == "draft"
        assert s["custody_suite"] == "Leeds Central"
        assert s["answers"] == {}
        assert session.scalar(select(func.count()).select_from(Screen)) == 1

    def test_same_idempotency_key_returns_same_screen(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session)) | {"Idempotency-Key": "tablet-7-0001"}
        body = screen_body()
        first = client.post("/api/v1/screens", json=body, headers=h)
        again = client.post("/api/v1/screens", json=body, headers=h)
        assert first.status_code == again.status_code == 201
        assert first.json()["id"] == again.json()["id"]
        assert again.headers["idempotent-replayed"] == "true"
        assert session.scalar(select(func.count()).select_from(Screen)) == 1

    def test_key_reused_for_a_different_request_is_409(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session)) | {"Idempotency-Key": "k"}
        assert client.post("/api/v1/screens", json=screen_body(), headers=h).status_code == 201
        r = client.post("/api/v1/screens", json=screen_body(custody_record="OTHER"), headers=h)
        assert r.status_code == 409
        assert session.scalar(select(func.count()).select_from(Screen)) == 1

    def test_invalid_fields_are_named(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        r = client.post("/api/v1/screens", json={"custody_record": "", "date_of_birth": "2990-01-01", "x": 1}, headers=h)
        assert r.status_code == 422
        assert r.headers["content-type"] == PROBLEM
        fields = {e["field"] for e in r.json()["errors"]}
        assert {"custody_record", "date_of_birth", "x"} <= fields

    def test_malformed_json_is_400(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session)) | {"content-type": "application/json"}
        r = client.post("/api/v1/screens", content=b'{"custody_record": ', headers=h)
        assert r.status_code == 400
        assert r.headers["content-type"] == PROBLEM

    def test_other_suite_is_forbidden(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        r = client.post("/api/v1/screens", json=screen_body(custody_suite="Bradford"), headers=h)
        assert r.status_code == 403
        assert r.json()["errors"][0]["field"] == "custody_suite"


class TestListScreens:
    def test_lists_own_suite_drafts_first(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        other = headers_for(client, make_user(session, suites=["Bradford"]))
        a = create_screen(client, h)
        b = create_screen(client, h)
        create_screen(client, other)
        give_consent(client, h, b["id"], screening=False)
        page = client.get("/api/v1/screens", headers=h).json()
        assert page["total"] == 2
        assert [s["id"] for s in page["items"]] == [a["id"], b["id"]]
        assert page["items"][1]["status"] == "declined"

    def test_paginates(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        ids = {create_screen(client, h)["id"] for _ in range(3)}
        p1 = client.get("/api/v1/screens?limit=2", headers=h).json()
        p2 = client.get("/api/v1/screens?limit=2&offset=2", headers=h).json()
        assert p1["total"] == 3 and len(p1["items"]) == 2 and len(p2["items"]) == 1
        assert {s["id"] for s in p1["items"] + p2["items"]} == ids


class TestGetScreen:
    def test_unknown_is_404(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        r = client.get("/api/v1/screens/00000000-0000-0000-0000-000000000000", headers=h)
        assert r.status_code == 404
        assert r.headers["content-type"] == PROBLEM

    def test_nurse_of_another_suite_is_403(self, client: TestClient, session: Session) -> None:
        s = create_screen(client, headers_for(client, make_user(session)))
        other = headers_for(client, make_user(session, suites=["Bradford"]))
        assert client.get(f"/api/v1/screens/{s['id']}", headers=other).status_code == 403

    def test_court_user_may_not_read_a_screen(self, client: TestClient, session: Session) -> None:
        s = create_screen(client, headers_for(client, make_user(session)))
        court = headers_for(client, make_user(session, Role.court))
        assert client.get(f"/api/v1/screens/{s['id']}", headers=court).status_code == 403

    def test_shows_scores_of_complete_instruments(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h)
        answer(client, h, s["id"], {f"phq9_{i}": 2 for i in range(1, 10)} | {"gad7_1": 1})
        got = client.get(f"/api/v1/screens/{s['id']}", headers=h).json()
        scores = {x["instrument_id"]: x for x in got["scores"]}
        assert set(scores) == {"phq9"}
        assert scores["phq9"]["total"] == 18
        assert scores["phq9"]["band"] == "moderately_severe"
        assert scores["phq9"]["positive"] is True


class TestPatchAnswers:
    def test_merges_partial_sets_in_any_order(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h)
        answer(client, h, s["id"], {"dast10_3": False, "phq9_9": 0})
        got = answer(client, h, s["id"], {"bjmhs_8": True, "phq9_9": 1})
        assert got["answers"] == {"dast10_3": False, "phq9_9": 1, "bjmhs_8": True}
        assert got["revisions"]["phq9_9"] == 2

    def test_keeps_every_change_with_who_and_when(self, client: TestClient, session: Session) -> None:
        nurse = make_user(session)
        h = headers_for(client, nurse)
        s = create_screen(client, h)
        answer(client, h, s["id"], {"phq9_1": 1})
        answer(client, h, s["id"], {"phq9_1": 3})
        answer(client, h, s["id"], {"phq9_1": None})
        hist = client.get(f"/api/v1/screens/{s['id']}/answers/history", headers=h).json()
        assert [(e["item_id"], e["value"], e["revision"]) for e in hist] == [
            ("phq9_1", 1, 1), ("phq9_1", 3, 2), ("phq9_1", None, 3)]
        assert {e["changed_by"] for e in hist} == {nurse.username}

    def test_one_bad_value_rejects_all_and_changes_nothing(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h)
        answer(client, h, s["id"], {"phq9_1": 1})
        bad = [
            ({"phq9_1": 2, "phq9_2": 4}, "answers.phq9_2"),  # out of range
            ({"phq9_1": 2, "phq9_2": True}, "answers.phq9_2"),  # bool for an ordinal item
            ({"phq9_1": 2, "bjmhs_1": 1}, "answers.bjmhs_1"),  # int for a yes/no item
            ({"phq9_1": 2, "nope_1": 0}, "answers.nope_1"),  # unknown item
            ({"phq9_1": 2, "phq9_3": "2"}, "answers.phq9_3"),  # string
            ({"phq9_1": 2, "phq9_4": 1.5}, "answers.phq9_4"),  # float
        ]
        for answers, field in bad:
            r = client.patch(f"/api/v1/screens/{s['id']}/answers", json={"answers": answers}, headers=h)
            assert r.status_code == 422, answers
            assert r.headers["content-type"] == PROBLEM
            assert field in {e["field"] for e in r.json()["errors"]}
            assert field.split(".")[1] in r.json()["detail"]
        assert client.get(f"/api/v1/screens/{s['id']}", headers=h).json()["answers"] == {"phq9_1": 1}
        assert session.scalar(select(func.count()).select_from(AnswerEvent)) == 1

    def test_final_screen_is_read_only(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h)
        answer(client, h, s["id"], {"phq9_1": 1})
        give_consent(client, h, s["id"])
        assert client.post(f"/api/v1/screens/{s['id']}/finalise", headers=h).json()["status"] == "final"
        r = client.patch(f"/api/v1/screens/{s['id']}/answers", json={"answers": {"phq9_1": 2}}, headers=h)
        assert r.status_code == 409
        assert r.headers["content-type"] == PROBLEM
        assert client.post(f"/api/v1/screens/{s['id']}/finalise", headers=h).status_code == 409
        r = client.put(f"/api/v1/screens/{s['id']}/consent", headers=h, json={
            "screening": False, "share_with_health": False, "share_with_court": False, "capacity": "has_capacity"})
        assert r.status_code == 409
        assert session.scalar(select(Answer.value).where(Answer.item_id == "phq9_1")) == 1

    def test_stale_revision_is_a_conflict(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h)
        answer(client, h, s["id"], {"phq9_1": 1})
        answer(client, h, s["id"], {"phq9_1": 2})  # another device
        r = client.patch(f"/api/v1/screens/{s['id']}/answers", headers=h,
                         json={"answers": {"phq9_1": 0}, "expected_revisions": {"phq9_1": 1}})
        assert r.status_code == 409
        assert r.json()["errors"][0]["field"] == "answers.phq9_1"
        assert client.get(f"/api/v1/screens/{s['id']}", headers=h).json()["answers"]["phq9_1"] == 2

    def test_a_save_sent_again_against_its_old_revision_is_not_a_conflict(
        self, client: TestClient, session: Session
    ) -> None:
        """A tablet whose save's response was lost sends it again, against the revision it had: the server holds that
        value already, so nothing would be overwritten. It answers with the saved state and writes nothing twice.
        With another value in the same request, a stale revision of an item changed elsewhere is still a 409."""
        h = headers_for(client, make_user(session))
        s = create_screen(client, h)
        answer(client, h, s["id"], {"phq9_1": 1, "phq9_2": 1})
        url = f"/api/v1/screens/{s['id']}/answers"
        first = client.patch(url, headers=h, json={"answers": {"phq9_1": 2}, "expected_revisions": {"phq9_1": 1}})
        assert first.status_code == 200 and first.json()["revisions"]["phq9_1"] == 2
        again = client.patch(url, headers=h, json={"answers": {"phq9_1": 2}, "expected_revisions": {"phq9_1": 1}})
        assert again.status_code == 200
        assert (again.json()["answers"]["phq9_1"], again.json()["revisions"]["phq9_1"]) == (2, 2)
        assert session.scalars(select(AnswerEvent.value).where(AnswerEvent.item_id == "phq9_1")
                               .order_by(AnswerEvent.id)).all() == [1, 2]
        session.rollback()
        # A resent value that is not the stored one is the conflict it always was, and changes nothing.
        r = client.patch(url, headers=h, json={"answers": {"phq9_1": 2, "phq9_2": 3},
                                               "expected_revisions": {"phq9_1": 1, "phq9_2": 0}})
        assert r.status_code == 409
        assert [e["field"] for e in r.json()["errors"]] == ["answers.phq9_2"]
        assert client.get(f"/api/v1/screens/{s['id']}", headers=h).json()["answers"]["phq9_2"] == 1

    def test_a_resent_yes_is_not_the_stored_one(self) -> None:
        """Whether a resent value is the stored one compares types, as the merge does: true is not 1."""
        stored = {"x": StoredAnswer(1, 2)}
        at = dict(screen_id="s", user_id=1, now=utcnow())
        with pytest.raises(Conflict):
            merge_answers(stored, {"x": True}, {"x": 1}, **at)
        assert merge_answers(stored, {"x": 1}, {"x": 1}, **at).events == []


class TestConsent:
    def test_decline_is_an_outcome_and_blocks_answers(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h)
        got = give_consent(client, h, s["id"], screening=False, share_with_health=False, share_with_court=False)
        assert got["status"] == "declined"
        assert got["consent"]["screening"] is False
        r = client.patch(f"/api/v1/screens/{s['id']}/answers", json={"answers": {"phq9_1": 1}}, headers=h)
        assert r.status_code == 409
        assert client.post(f"/api/v1/screens/{s['id']}/finalise", headers=h).status_code == 409
        # The person changes their mind: screening reopens.
        assert give_consent(client, h, s["id"])["status"] == "draft"

    def test_invalid_capacity_is_named(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h)
        r = client.put(f"/api/v1/screens/{s['id']}/consent", headers=h, json={
            "screening": True, "share_with_health": True, "share_with_court": True, "capacity": "maybe"})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "capacity"

    def test_finalise_needs_consent(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h)
        r = client.post(f"/api/v1/screens/{s['id']}/finalise", headers=h)
        assert r.status_code == 409
        assert "consent" in r.json()["detail"]


class TestPersonLinkage:
    def test_same_reference_links_across_suites_and_is_never_stored(
        self, client: TestClient, session: Session, engine
    ) -> None:
        leeds = headers_for(client, make_user(session))
        bradford = headers_for(client, make_user(session, suites=["Bradford"]))
        first = create_screen(client, leeds, person_ref="2003/0123456X")
        second = create_screen(client, bradford, person_ref="2003 0123456x")
        other = create_screen(client, leeds, person_ref="1999/7654321A")
        unlinked = create_screen(client, leeds)
        assert first["previous_contacts"] == 0 and first["linked"] is True
        assert second["previous_contacts"] == 1
        assert other["previous_contacts"] == 0
        assert unlinked["linked"] is False and unlinked["previous_contacts"] == 0
        with engine.connect() as conn:
            from sqlalchemy import text

            for table in ("screens", "audit_entries"):
                dump = " ".join(str(row) for row in conn.execute(text(f"SELECT * FROM {table}")))
                assert "0123456" not in dump
