"""Test fixtures: a real database (SQLite file and PostgreSQL), created by the migrations.

Every API test runs once per backend. PostgreSQL comes from SCREENING_TEST_POSTGRES_URL (default: the
local server at 127.0.0.1:5432, database `test`); each test session creates its own throw-away
database there. Where no server is reachable the PostgreSQL tests skip with the reason, unless
SCREENING_REQUIRE_POSTGRES=1 (set by .ci/run), which turns that into a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from screening import migrate
from screening.app import create_app
from screening.config import Settings
from screening.db import make_engine, make_session_factory
from screening.tables import Base

PG_ADMIN_URL = os.environ.get("SCREENING_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("SCREENING_REQUIRE_POSTGRES") == "1"
TEST_SECRET = "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"

T = TypeVar("T")


def run_on_a_loop_of_its_own(main: Coroutine[Any, Any, T],
                             loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None) -> T:
    """Run `main` on a new event loop (asyncio's, or `loop_factory`'s), in a thread of its own: a session-wide
    browser fixture (Playwright's sync API) may already have a loop running in this one."""

    def run() -> T:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(main)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def postgres_admin() -> Engine:
    """An AUTOCOMMIT engine on the test server (PG_ADMIN_URL). Where none is reachable the test skips, saying why,
    or fails with SCREENING_REQUIRE_POSTGRES=1."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no server here"
        admin.dispose()
        reason = f"PostgreSQL is not reachable at {PG_ADMIN_URL.split('@')[-1]}: {type(exc).__name__}"
        if REQUIRE_PG:
            pytest.fail(reason + " (SCREENING_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    return admin


def _postgres_database() -> Iterator[str]:
    """An empty database of its own on the test server (`postgres_admin`), dropped afterwards: its URL, yielded once."""
    admin = postgres_admin()
    name = f"screening_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for the session, on each backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "screening.db"
        url = f"sqlite:///{path}"
        _migrate(url, path.parent)
        yield url
    else:
        for url in _postgres_database():
            _migrate(url, tmp_path_factory.mktemp("pgdata"))
            yield url


def _migrate(url: str, data_dir: Path) -> None:
    engine = make_engine(Settings(database_url=url, data_dir=data_dir))
    migrate.upgrade(engine)
    engine.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        data_dir=tmp_path,
        secret_key=TEST_SECRET,
        person_key=TEST_SECRET + "-person",
    )


def _empty(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for t in tables:
                conn.execute(text(f'DELETE FROM "{t}"'))


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """The test's engine; every table is emptied after the test (concurrency tests need real commits)."""
    eng = make_engine(settings)
    try:
        yield eng
    finally:
        _empty(eng)
        eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session for arranging data and checking what was stored.

    Commit or roll back before calling the app: on SQLite every transaction begins IMMEDIATE and holds
    the writer lock until it ends.
    """
    s = make_session_factory(engine)()
    try:
        yield s
    finally:
        s.rollback()
        s.close()


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
