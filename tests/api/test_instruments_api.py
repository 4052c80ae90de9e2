from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from screening.auth.models import Role
from tests.factories import headers_for, make_user

PROBLEM = "application/problem+json"


class TestListInstruments:
    def test_without_token_is_401(self, client: TestClient) -> None:
        r = client.get("/api/v1/instruments")
        assert r.status_code == 401
        assert r.headers["content-type"] == PROBLEM

    def test_lists_every_instrument_with_items(self, client: TestClient, session: Session) -> None:
        r = client.get("/api/v1/instruments", headers=headers_for(client, make_user(session, Role.court)))
        assert r.status_code == 200
        by_id = {i["id"]: i for i in r.json()}
        assert {"phq9", "gad7", "bjmhs", "audit", "auditc", "dast10", "ldc", "risk", "withdrawal", "social",
                "physical"} <= set(by_id)
        item = by_id["audit"]["items"][8]
        assert item["id"] == "audit_9" and item["type"] == "ordinal"
        assert [o["points"] for o in item["options"]] == [0, 2, 4]
        assert by_id["dast10"]["items"][2]["reverse"] is True


class TestGetInstrument:
    def test_unknown_is_404(self, client: TestClient, session: Session) -> None:
        r = client.get("/api/v1/instruments/nope", headers=headers_for(client, make_user(session)))
        assert r.status_code == 404
        assert r.headers["content-type"] == PROBLEM

    def test_one(self, client: TestClient, session: Session) -> None:
        r = client.get("/api/v1/instruments/bjmhs", headers=headers_for(client, make_user(session)))
        assert r.status_code == 200
        body = r.json()
        assert body["title"].startswith("Brief Jail") and body["domain"] == "mental_health"
        assert [i["id"] for i in body["items"]] == [f"bjmhs_{n}" for n in range(1, 9)]


class TestScoreInstrument:
    def test_scores_phq9(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        r = client.post("/api/v1/instruments/phq9/score", headers=h,
                        json={"answers": {f"phq9_{i}": 2 for i in range(1, 10)}})
        assert r.status_code == 200
        assert {k: r.json()[k] for k in ("instrument_id", "total", "band", "positive")} == {
            "instrument_id": "phq9", "total": 18, "band": "moderately_severe", "positive": True}

    def test_bjmhs_has_no_band(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        r = client.post("/api/v1/instruments/bjmhs/score", headers=h,
                        json={"answers": {f"bjmhs_{i}": i == 7 for i in range(1, 9)}})
        assert r.json()["band"] is None and r.json()["positive"] is True

    def test_invalid_answers_name_each_item(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        answers = {f"gad7_{i}": 1 for i in range(1, 7)} | {"gad7_1": 9, "gad7_2": "1", "phq9_1": 0}
        r = client.post("/api/v1/instruments/gad7/score", headers=h, json={"answers": answers})
        assert r.status_code == 422
        assert r.headers["content-type"] == PROBLEM
        fields = {e["field"] for e in r.json()["errors"]}
        assert fields == {"answers.gad7_1", "answers.gad7_2", "answers.phq9_1", "answers.gad7_7"}

    def test_unknown_instrument_is_404(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        assert client.post("/api/v1/instruments/k10/score", headers=h, json={"answers": {}}).status_code == 404

    def test_unknown_body_field_is_422(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        r = client.post("/api/v1/instruments/gad7/score", headers=h, json={"answers": {}, "extra": 1})
        assert r.status_code == 422
        assert "extra" in {e["field"] for e in r.json()["errors"]}
