"""End to end in Chromium: the court user sees only the reports shared with the court, and the service
worker keeps the app shell for offline use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy.orm import Session

from screening.auth.models import Role
from tests.factories import make_user
from tests.web.helpers import Api, check_accessibility, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

NO_COURT = {"share_with_court": False}


def finalised(api: Api, record: str, consent: dict[str, bool]) -> dict[str, object]:
    s = api.screen(consent=consent, custody_record=record)
    api.answers(str(s["id"]), {"risk_plan": True})
    return api.call("POST", f"/api/v1/screens/{s['id']}/finalise")


class TestCourtView:
    def test_lists_only_final_screens_shared_with_the_court(
        self, page: Page, session: Session, live_url: str
    ) -> None:
        leeds = Api(live_url, make_user(session, full_name="Nurse Ada").username)
        bradford = Api(live_url, make_user(session, suites=["Bradford"]).username)
        court = make_user(session, Role.court, suites=["Leeds Central"], full_name="Legal Adviser")
        shared = finalised(leeds, "CR/SHARED/26", {})
        finalised(leeds, "CR/NOTSHARED/26", NO_COURT)
        leeds.screen(consent={}, custody_record="CR/DRAFT/26")
        finalised(bradford, "CR/BRADFORD/26", {})
        withdrawn = leeds.screen(consent={}, custody_record="CR/WITHDRAWN/26")
        leeds.call("PUT", f"/api/v1/screens/{withdrawn['id']}/consent",
                   json={"screening": True, "share_with_health": True, "share_with_court": False,
                         "capacity": "has_capacity"})
        leeds.call("POST", f"/api/v1/screens/{withdrawn['id']}/finalise")

        sign_in(page, court.username)
        expect(page).to_have_url(re.compile(r"/app/court$"))
        rows = page.locator("#reports-table tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("CR/SHARED/26")
        expect(rows.first).to_contain_text("Nurse Ada")
        check_accessibility(page, "court report list")

        # The nurse pages are not for the court: sent back to the list.
        page.goto("/app/")
        expect(page).to_have_url(re.compile(r"/app/court$"))

        rows.first.get_by_role("link", name=re.compile("Open report")).click()
        expect(page).to_have_url(re.compile(rf"/app/report\?id={shared['id']}"))
        expect(page.get_by_role("heading", name="Court information report").first).to_be_visible()
        expect(page.locator("#report-frame-wrap .report-preview")).to_contain_text("CR/SHARED/26")
        check_accessibility(page, "court report")
        with page.expect_download() as download:
            page.get_by_role("button", name="Download PDF").click()
        assert Path(download.value.path()).read_bytes().startswith(b"%PDF")
        leeds.close()
        bradford.close()


class TestServiceWorker:
    def test_app_shell_is_cached_and_opens_offline(
        self, sw_context: BrowserContext, session: Session, live_url: str
    ) -> None:
        page = sw_context.new_page()
        nurse = make_user(session)
        screen = Api(live_url, nurse.username).screen(consent={})
        sign_in(page, nurse.username)
        page.goto(f"/app/questions?id={screen['id']}")
        expect(page.locator("#question input").first).to_be_visible()
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        cached = page.evaluate("""async () => {
            const keys = await caches.keys();
            const c = await caches.open(keys.find((k) => k.startsWith('ld-shell-')));
            return (await c.keys()).map((r) => new URL(r.url).pathname);
        }""")
        for path in ("/app/", "/app/signin", "/app/questions", "/app/assessment", "/app/static/app.js",
                     "/app/static/questions.js", "/app/static/app.css"):
            assert path in cached, f"{path} is not in the app-shell cache"
        # Nothing personal in the shell cache: API responses are never stored there.
        assert not [p for p in cached if p.startswith("/api/")]

        sw_context.set_offline(True)
        page.reload()
        expect(page.get_by_role("heading", name="Screening questions")).to_be_visible()
        # The screen comes from the copy kept on the device.
        expect(page.locator("#question input").first).to_be_visible()
        sw_context.set_offline(False)
