"""Browser fixtures: the real service under uvicorn on a free 127.0.0.1 port (tests/live.py), and Debian's Chromium.

The server runs in a background thread on the session's migrated database (SQLite, and PostgreSQL when
reachable), so tests can arrange data and check what was stored through the same database. Every table
is emptied after each test by the `engine` fixture.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from screening.config import Settings
from tests.conftest import TEST_SECRET
from tests.live import live_server, wait_until_idle

CHROMIUM = os.environ.get("SCREENING_TEST_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def live_settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(environment="test", database_url=database_url, data_dir=tmp_path_factory.mktemp("live"),
                    secret_key=TEST_SECRET, person_key=TEST_SECRET + "-person")


@pytest.fixture(scope="session")
def live_url(live_settings: Settings) -> Iterator[str]:
    """Base URL of the running service (one per database backend for the whole session)."""
    with live_server(live_settings) as url:
        yield url


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: run scripts/bootstrap.sh dev")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    b = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield b
    finally:
        b.close()


def _new_context(browser: Browser, live_url: str, service_workers: str) -> BrowserContext:
    ctx = browser.new_context(base_url=live_url, viewport={"width": 1024, "height": 768}, locale="en-GB",
                              timezone_id="UTC", service_workers=service_workers)  # type: ignore[arg-type]
    ctx.set_default_timeout(10_000)
    return ctx


@pytest.fixture
def context(browser: Browser, live_url: str, engine: Any) -> Iterator[BrowserContext]:
    """A fresh browser profile at tablet landscape size, service worker blocked.

    Chromium's offline emulation does not reliably reach requests that pass through a service worker, so
    the tests of the answer queue run without one: `set_offline` then cuts every API call, as a dropped
    Wi-Fi would. The service worker has its own test (`sw_context`).
    """
    ctx = _new_context(browser, live_url, "block")
    try:
        yield ctx
    finally:
        ctx.close()
        wait_until_idle(live_url)  # before `engine` empties the tables


@pytest.fixture
def sw_context(browser: Browser, live_url: str, engine: Any) -> Iterator[BrowserContext]:
    """As `context`, with the app's service worker allowed."""
    ctx = _new_context(browser, live_url, "allow")
    try:
        yield ctx
    finally:
        ctx.close()
        wait_until_idle(live_url)  # before `engine` empties the tables


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    assert not errors, f"JavaScript errors on the page: {errors}"
