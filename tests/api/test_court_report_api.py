from __future__ import annotations

import hashlib
import io
import re

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from screening.audit.models import AuditEntry
from screening.auth.models import Role
from screening.routes.models import CourtReport
from tests.factories import headers_for, make_user
from tests.routes import scenarios
from tests.routes.readability import flesch_reading_ease
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
# Words that would mean model output or instrument jargon had leaked into a court document.
JARGON = re.compile(r"probab|model|score|threshold|PHQ|GAD|BJMHS|AUDIT|DAST|\d+(\.\d+)?\s*%", re.IGNORECASE)


def report_url(screen_id: str, fmt: str | None = None) -> str:
    return f"/api/v1/screens/{screen_id}/court-report" + (f"?format={fmt}" if fmt else "")


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def final_screen(client: TestClient, h: dict[str, str], scenario: Scenario, **consent: bool) -> str:
    sid = open_screen(client, h, scenario, **consent)
    decide_everything(client, h, sid)
    finalise(client, h, sid)
    return sid


class TestCourtReportAccess:
    def test_without_token_is_401(self, client: TestClient, session: Session) -> None:
        sid = final_screen(client, headers_for(client, make_user(session)), NOTHING_FOUND)
        r = client.get(report_url(sid))
        assert r.status_code == 401
        assert r.headers["content-type"] == PROBLEM

    @pytest.mark.parametrize("role", [Role.data_scientist, Role.admin, Role.commissioner])
    def test_other_roles_are_403(self, client: TestClient, session: Session, role: Role) -> None:
        sid = final_screen(client, headers_for(client, make_user(session)), NOTHING_FOUND)
        r = client.get(report_url(sid), headers=headers_for(client, make_user(session, role)))
        assert r.status_code == 403
        assert r.headers["content-type"] == PROBLEM

    def test_court_reads_the_report_but_not_the_screen(self, client: TestClient, session: Session) -> None:
        sid = final_screen(client, headers_for(client, make_user(session)), LEARNING_DISABILITY)
        court = headers_for(client, make_user(session, Role.court))
        r = client.get(report_url(sid), headers=court)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert client.get(f"/api/v1/screens/{sid}", headers=court).status_code == 403
        assert client.get(f"/api/v1/screens/{sid}/recommendations", headers=court).status_code == 403

    def test_nurse_of_another_suite_is_403(self, client: TestClient, session: Session) -> None:
        sid = final_screen(client, headers_for(client, make_user(session)), NOTHING_FOUND)
        r = client.get(report_url(sid), headers=headers_for(client, make_user(session, suites=["Bradford"])))
        assert r.status_code == 403

    def test_draft_is_409(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, LEARNING_DISABILITY)
        decide_everything(client, h, sid)
        r = client.get(report_url(sid), headers=headers_for(client, make_user(session, Role.court)))
        assert r.status_code == 409
        assert r.headers["content-type"] == PROBLEM
        assert session.scalars(select(CourtReport)).all() == []

    def test_no_consent_to_share_with_the_court_is_403(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = final_screen(client, h, LEARNING_DISABILITY, share_with_court=False)
        for headers in (headers_for(client, make_user(session, Role.court)), h):
            r = client.get(report_url(sid, "pdf"), headers=headers)
            assert r.status_code == 403
            assert r.headers["content-type"] == PROBLEM
        assert session.scalars(select(CourtReport)).all() == []

    def test_unknown_format_is_422(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = final_screen(client, h, NOTHING_FOUND)
        r = client.get(report_url(sid, "docx"), headers=h)
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "format"


class TestCourtReportContent:
    def test_pdf_is_recorded_with_its_sha256_version_and_author(self, client: TestClient, session: Session) -> None:
        nurse = make_user(session, full_name="Sam Okafor")
        h = headers_for(client, nurse)
        sid = final_screen(client, h, OPIATE_WITHDRAWAL)
        court = make_user(session, Role.court)
        r = client.get(report_url(sid, "pdf"), headers=headers_for(client, court))
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/pdf"
        assert r.content.startswith(b"%PDF")
        row = session.scalars(select(CourtReport)).one()
        assert row.sha256 == hashlib.sha256(r.content).hexdigest()
        assert (row.format, row.report_version, row.practitioner, row.generated_by_id) == (
            "pdf", "1.0.0", "Sam Okafor", court.id)
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "court_report.read")).one()
        assert entry.detail["sha256"] == row.sha256 and entry.record_id == sid
        text = pdf_text(r.content)
        assert "Sam Okafor" in text
        assert "Report version 1.0.0" in text

    def test_acute_crisis_report_reads_plainly_and_names_the_risk(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = final_screen(client, h, ACUTE_SUICIDAL_CRISIS)
        text = pdf_text(client.get(report_url(sid, "pdf"), headers=h).content)
        flat = " ".join(text.split())
        assert "Risk of suicide or self-harm" in flat
        assert "they have a plan to end their life" in flat
        assert "An assessment under the Mental Health Act was asked for." in flat
        assert "A mental health treatment requirement." in flat
        assert "They take medicine prescribed for their mental health." in flat
        assert not JARGON.search(text), JARGON.search(text)

    def test_learning_disability_report_explains_participation(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = final_screen(client, h, LEARNING_DISABILITY)
        flat = " ".join(pdf_text(client.get(report_url(sid, "pdf"), headers=h).content).split())
        assert "think about an intermediary" in flat
        assert "An appropriate adult was asked for in custody." in flat
        assert "they found it hard to repeat back simple questions" in flat
        assert "They have had support from a learning disability team." in flat

    def test_withheld_health_information_never_appears(self, client: TestClient, session: Session) -> None:
        """Agreed to share with the court but not with health services: no health detail reaches the court."""
        h = headers_for(client, make_user(session))
        sid = final_screen(client, h, HOMELESS_YOUNG_ADULT, share_with_health=False)
        flat = " ".join(pdf_text(client.get(report_url(sid, "pdf"), headers=h).content).split())
        for withheld in ("drink", "alcohol", "Alcohol", "withdrawal", "drug", "Drug", "every day", "in the morning"):
            assert withheld not in flat, withheld
        assert "They did not agree to share health information." in flat
        # Non-health needs and referrals the nurse accepted still reach the court.
        assert "They were referred for help with housing." in flat
        assert "they have nowhere safe to live" in flat
        assert "A rehabilitation activity requirement" in flat

    def test_appropriate_adult_is_stated_without_the_health_reason(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = final_screen(client, h, LEARNING_DISABILITY, share_with_health=False)
        court = headers_for(client, make_user(session, Role.court))
        flat = " ".join(pdf_text(client.get(report_url(sid, "pdf"), headers=court).content).split())
        assert "An appropriate adult was asked for in custody." in flat
        for withheld in ("learning disability", "Learning disability", "special school", "autism", "read forms",
                         "intermediary", "learning disability team"):
            assert withheld not in flat, withheld
        assert "No referrals were made." in flat

    def test_the_same_screen_shares_health_when_the_person_agreed(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = final_screen(client, h, HOMELESS_YOUNG_ADULT)
        flat = " ".join(pdf_text(client.get(report_url(sid, "pdf"), headers=h).content).split())
        assert "An alcohol treatment requirement." in flat
        assert "they need a drink in the morning to stop shaking" in flat

    def test_only_what_the_nurse_confirmed_appears(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = open_screen(client, h, OPIATE_WITHDRAWAL)
        base = f"/api/v1/screens/{sid}"
        client.post(f"{base}/recommendations/drr/decision", headers=h,
                    json={"decision": "decline", "reason_code": "person_declined", "note": "Does not want treatment."})
        client.post(f"{base}/recommendations/withdrawal_management/decision", json={"decision": "accept"}, headers=h)
        finalise(client, h, sid)  # substance need proposed but never confirmed; DRR declined
        flat = " ".join(pdf_text(client.get(f"{base}/court-report?format=pdf", headers=h).content).split())
        assert "drug rehabilitation requirement" not in flat.lower()
        assert "Drug or alcohol use" not in flat
        assert "The custody doctor or nurse was asked to manage withdrawal." in flat
        assert "Does not want treatment" not in flat

    def test_nothing_found(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        sid = final_screen(client, h, NOTHING_FOUND)
        flat = " ".join(pdf_text(client.get(report_url(sid, "pdf"), headers=h).content).split())
        assert "The nurse confirmed no needs for this report." in flat
        assert "No referrals were made." in flat

    def test_html_is_autoescaped(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session, full_name="<script>alert(1)</script> O'Neil"))
        sid = final_screen(client, h, NOTHING_FOUND)
        html = client.get(report_url(sid), headers=h).text
        assert "<script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt; O&#39;Neil" in html

    @pytest.mark.parametrize("scenario", scenarios.ALL, ids=lambda s: s.name)
    def test_sample_reports_are_plain_english(self, client: TestClient, session: Session, scenario: Scenario) -> None:
        h = headers_for(client, make_user(session, full_name="Sam Okafor"))
        sid = final_screen(client, h, scenario)
        r = client.get(report_url(sid, "pdf"), headers=h)
        assert len(PdfReader(io.BytesIO(r.content)).pages) <= 2
        text = pdf_text(r.content)
        assert flesch_reading_ease(text) >= 50
        assert not JARGON.search(text), JARGON.search(text)
