from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from screening.auth.models import Role
from tests.factories import create_screen, give_consent, headers_for, make_user

PROBLEM = "application/problem+json"


def _final(client: TestClient, headers: dict[str, str], **consent: bool) -> str:
    s = create_screen(client, headers)
    give_consent(client, headers, s["id"], **consent)
    r = client.post(f"/api/v1/screens/{s['id']}/finalise", headers=headers)
    assert r.status_code == 200, r.text
    return str(s["id"])


class TestListSharedReports:
    def test_without_token_is_401(self, client: TestClient) -> None:
        r = client.get("/api/v1/court-reports")
        assert r.status_code == 401
        assert r.headers["content-type"] == PROBLEM

    def test_nurse_is_403(self, client: TestClient, session: Session) -> None:
        r = client.get("/api/v1/court-reports", headers=headers_for(client, make_user(session)))
        assert r.status_code == 403
        assert r.headers["content-type"] == PROBLEM

    def test_invalid_limit_is_named(self, client: TestClient, session: Session) -> None:
        court = make_user(session, Role.court, suites=["Leeds Central"])
        r = client.get("/api/v1/court-reports?limit=0", headers=headers_for(client, court))
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "limit"

    def test_only_final_shared_screens_of_the_courts_suites(self, client: TestClient, session: Session) -> None:
        nurse = headers_for(client, make_user(session))
        other = headers_for(client, make_user(session, suites=["Bradford"]))
        court = headers_for(client, make_user(session, Role.court, suites=["Leeds Central"]))
        shared = _final(client, nurse)
        _final(client, nurse, share_with_court=False)
        _final(client, other)
        draft = create_screen(client, nurse)
        give_consent(client, nurse, draft["id"])
        withdrawn = create_screen(client, nurse)
        give_consent(client, nurse, withdrawn["id"])
        give_consent(client, nurse, withdrawn["id"], share_with_court=False)  # the latest consent counts
        client.post(f"/api/v1/screens/{withdrawn['id']}/finalise", headers=nurse)

        page = client.get("/api/v1/court-reports", headers=court).json()
        assert [r["screen_id"] for r in page["items"]] == [shared]
        assert page["total"] == 1
        assert page["items"][0]["finalised_by"].startswith("nurse")  # make_user: full name = username

    def test_court_account_without_suites_sees_every_suite(self, client: TestClient, session: Session) -> None:
        leeds = _final(client, headers_for(client, make_user(session)))
        bradford = _final(client, headers_for(client, make_user(session, suites=["Bradford"])))
        _final(client, headers_for(client, make_user(session)), share_with_court=False)
        court = headers_for(client, make_user(session, Role.court))
        items = client.get("/api/v1/court-reports", headers=court).json()["items"]
        assert {r["screen_id"] for r in items} == {leeds, bradford}
