"""Render the commissioners' dashboard over a seeded synthetic caseload and save a screenshot.

    PYTHONPATH=$PWD .venv/bin/python scripts/dashboard_screenshot.py docs/img/dashboard.png

Uses a throw-away SQLite database and the system Chromium (/usr/bin/chromium); the caseload is the
one the insights tests use (tests/insights/caseload.py), so every figure on the picture is synthetic.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from fastapi.testclient import TestClient
from playwright.sync_api import sync_playwright

from screening import migrate
from screening.app import create_app
from screening.auth.models import Role
from screening.auth.service import create_user
from screening.config import Settings
from screening.db import make_engine, make_session_factory
from tests.insights.caseload import build, insert, month_of

KEY = "screenshot-person-key-0123456789abcdef"
PASSWORD = "a long passphrase here"  # noqa: S105 - a throw-away database for the picture


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(environment="test", data_dir=Path(tmp), secret_key=KEY + "-tokens",
                            person_key=KEY)
        engine = make_engine(settings)
        migrate.upgrade(engine)
        with make_session_factory(engine)() as session:
            nurse = create_user(session, "nurse", PASSWORD, Role.nurse, custody_suites=["Leeds Central"])
            create_user(session, "commissioner", PASSWORD, Role.commissioner, custody_suites=[])
            session.commit()
            cases = build(seed=7)
            insert(session, cases, nurse.id, KEY)
        engine.dispose()
        months = sorted({month_of(c.at) for c in cases})
        with TestClient(create_app(settings)) as client:
            token = client.post("/api/v1/auth/token",
                                data={"username": "commissioner", "password": PASSWORD}).json()
            r = client.get("/insights", params={"from": months[0], "to": months[-1]},
                           headers={"Authorization": f"Bearer {token['access_token']}"})
            r.raise_for_status()
            css = client.get("/insights/insights.css").text
    # The page links its stylesheet; the screenshot renders from a string, so inline it here.
    html = r.text.replace('<link rel="stylesheet" href="/insights/insights.css">', f"<style>{css}</style>")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.set_content(html)
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True)
        browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img/dashboard.png"))
