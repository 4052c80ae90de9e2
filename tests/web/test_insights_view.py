"""End to end in Chromium: a commissioner signs in to the app and sees the dashboard; others cannot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from screening.auth.models import Role
from tests.factories import make_user
from tests.web.helpers import check_accessibility, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


class TestCommissionersDashboard:
    def test_commissioner_lands_on_the_dashboard_with_charts_and_the_board_pdf(
        self, page: Page, session: Session
    ) -> None:
        commissioner = make_user(session, Role.commissioner, full_name="Commissioning Lead")
        sign_in(page, commissioner.username)
        expect(page).to_have_url(re.compile(r"/app/insights$"))
        view = page.locator("#dashboard .dashboard-view")
        expect(view.get_by_role("heading", name=re.compile("By custody suite"))).to_be_visible()
        expect(view.locator("svg[role=img]").first).to_be_visible()
        assert view.locator("script").count() == 0
        check_accessibility(page, "commissioners' dashboard")
        with page.expect_download() as download:
            page.get_by_role("button", name=re.compile("Download board report")).click()
        assert Path(download.value.path()).read_bytes().startswith(b"%PDF")

    def test_a_nurse_is_sent_back_to_her_screens(self, page: Page, session: Session) -> None:
        sign_in(page, make_user(session).username)
        page.goto("/app/insights")
        expect(page).to_have_url(re.compile(r"/app/$"))
