"""Screenshots of the web app's main pages at tablet sizes, for the README (docs/img/web-*.png).

Runs the real service on a throw-away SQLite database with made-up people, and Debian's Chromium:
    PYTHONPATH=$PWD .venv/bin/python scripts/screenshots.py [--out docs/img]
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from playwright.sync_api import Page, sync_playwright

from screening import migrate
from screening.app import create_app
from screening.auth.models import Role
from screening.auth.service import create_user
from screening.config import Settings
from screening.db import make_engine, make_session_factory, unit_of_work

PASSWORD = "screenshot passphrase 2026"  # noqa: S105 - a throw-away database's made-up account
SIZES = [(1024, 768), (768, 1024)]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def serve(settings: Settings) -> tuple[uvicorn.Server, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", access_log=False))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


def arrange(base: str) -> dict[str, Any]:
    """Made-up screens: one in progress with an urgent flag, one declined, one final and shared with the court."""
    http = httpx.Client(base_url=base)
    tok = http.post("/api/v1/auth/token", data={"username": "nurse.ada", "password": PASSWORD}).json()
    http.headers["Authorization"] = f"Bearer {tok['access_token']}"

    def screen(record: str, dob: str, consent: dict[str, Any] | None, answers: dict[str, Any]) -> dict[str, Any]:
        s = http.post("/api/v1/screens", json={"custody_record": record, "date_of_birth": dob, "sex": "male"}).json()
        if consent is not None:
            http.put(f"/api/v1/screens/{s['id']}/consent", json={"screening": True, "share_with_health": True,
                     "share_with_court": True, "capacity": "has_capacity"} | consent).raise_for_status()
        if answers:
            http.patch(f"/api/v1/screens/{s['id']}/answers", json={"answers": answers}).raise_for_status()
        return dict(s)

    phq = {f"phq9_{i}": v for i, v in enumerate([2, 3, 2, 2, 1, 2, 1, 0, 1], start=1)}
    risk = {"risk_current_thoughts": True, "risk_plan": True, "risk_past_attempt": True, "risk_self_harm_history": True,
            "risk_recent_self_harm": False, "risk_charge_distress": True, "risk_observed_concern": False}
    bjmhs = {f"bjmhs_{i}": i in (6, 7) for i in range(1, 9)}
    final = screen("CR/00418/26", "1979-03-02", {}, {**phq, "audit_1": 4, "audit_2": 3, "audit_3": 3})
    http.post(f"/api/v1/screens/{final['id']}/finalise").raise_for_status()
    screen("CR/00422/26", "1994-11-20", {"screening": False, "share_with_health": False, "share_with_court": False}, {})
    active = screen("CR/00431/26", "2001-07-09", {}, {**phq, **risk, **bjmhs, "gad7_1": 2})
    screen("CR/00433/26", "1988-01-30", None, {})
    return {"active": active["id"], "final": final["id"]}


def sign_in(page: Page, username: str) -> None:
    page.goto("/app/signin")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/app/signin" not in url)
    page.get_by_role("button", name="Sign out").wait_for()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(environment="test", data_dir=Path(tmp), database_url=f"sqlite:///{tmp}/shots.db",
                            secret_key="screenshots-only-" + "x" * 32, person_key="screenshots-only-" + "y" * 32)
        engine = make_engine(settings)
        migrate.upgrade(engine)
        with unit_of_work(make_session_factory(engine)) as session:
            create_user(session, "nurse.ada", PASSWORD, Role.nurse, full_name="Ada Okafor",
                        custody_suites=["Leeds Central"])
            create_user(session, "court.lee", PASSWORD, Role.court, full_name="Sam Lee",
                        custody_suites=["Leeds Central"])
        engine.dispose()
        server, base = serve(settings)
        ids = arrange(base)
        shots = [
            ("signin", None, "/app/signin"),
            ("screens", "nurse.ada", "/app/"),
            ("consent", "nurse.ada", f"/app/consent?id={ids['active']}"),
            ("questions", "nurse.ada", f"/app/questions?id={ids['active']}#section=mental_health&q=gad7_2"),
            ("assessment", "nurse.ada", f"/app/assessment?id={ids['active']}"),
            ("court", "court.lee", "/app/court"),
            ("report", "court.lee", f"/app/report?id={ids['final']}"),
        ]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            for width, height in SIZES:
                ctx = browser.new_context(base_url=base, viewport={"width": width, "height": height},
                                          locale="en-GB", timezone_id="UTC", service_workers="block")
                page = ctx.new_page()
                user = None
                for name, who, url in shots:
                    if who and who != user:
                        sign_in(page, who)
                        user = who
                    page.goto(url)
                    page.wait_for_load_state("networkidle")
                    path = args.out / f"web-{name}-{width}x{height}.png"
                    page.screenshot(path=str(path))
                    print(path)
                ctx.close()
            browser.close()
        server.should_exit = True


if __name__ == "__main__":
    main()
