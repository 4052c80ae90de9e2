"""What the browser tests do again and again: sign in, run axe-core, arrange data through the API."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.factories import PASSWORD, screen_body
from tests.web.conftest import AXE

# WCAG 2.1 A and AA rules; only violations axe rates serious or critical fail a test.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@cache
def _axe_source() -> str:
    if not AXE.exists():
        raise RuntimeError(f"{AXE} is missing: run scripts/bootstrap.sh dev (npm ci)")
    return AXE.read_text(encoding="utf-8") + "\n;true"


def sign_in(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/app/signin")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/app/signin"))
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def check_accessibility(page: Page, what: str) -> None:
    """axe-core on the page as it is now: no serious or critical WCAG 2.1 AA violation."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through DevTools, not as a <script> tag: the pages' CSP (script-src 'self') stays on.
        page.evaluate(_axe_source())
    result = page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS)
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"accessibility violations on {what}: {bad}"


class Api:
    """The public API, as another device or an earlier step would use it."""

    def __init__(self, base_url: str, username: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10)
        r = self.http.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
        r.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        r = self.http.request(method, path, **kw)
        assert r.is_success, r.text
        return dict(r.json())

    def screen(self, consent: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
        s = self.call("POST", "/api/v1/screens", json=screen_body(**overrides))
        if consent is not None:
            body = {"screening": True, "share_with_health": True, "share_with_court": True,
                    "capacity": "has_capacity"} | consent
            s = self.call("PUT", f"/api/v1/screens/{s['id']}/consent", json=body)
        return s

    def answers(self, screen_id: str, answers: dict[str, Any]) -> dict[str, Any]:
        return self.call("PATCH", f"/api/v1/screens/{screen_id}/answers", json={"answers": answers})

    def get(self, screen_id: str) -> dict[str, Any]:
        return self.call("GET", f"/api/v1/screens/{screen_id}")

    def close(self) -> None:
        self.http.close()


def current_item(page: Page) -> str:
    return str(page.locator("#question").get_attribute("data-item"))


def choose(page: Page, label: str) -> None:
    """Tap an answer of the question on show, by its label."""
    page.locator("#question").get_by_label(label, exact=True).check()


def question_count(page: Page) -> tuple[int, int]:
    text = page.locator(".question__count").inner_text()
    m = re.match(r"Question (\d+) of (\d+)", text)
    assert m, text
    return int(m.group(1)), int(m.group(2))
