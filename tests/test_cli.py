"""The `screening` command on a fresh database: migrate, users add, and refusing bad set-ups."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from screening.auth.models import User
from screening.cli import app
from screening.config import Settings
from screening.db import make_engine, make_session_factory
from screening.migrate import current_heads, script_heads
from tests.live import free_port, served_env

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SCREENING_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SCREENING_DATABASE_URL", raising=False)
    return tmp_path


def test_migrate_creates_the_sqlite_database_in_wal_mode(env: Path) -> None:
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    engine = make_engine(Settings())
    assert current_heads(engine) == script_heads()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()
    assert (env / "screening.db").exists()
    # Running it again is a no-op, as it is for a second instance.
    assert runner.invoke(app, ["migrate"]).exit_code == 0


def test_start_up_head_check_agrees_with_alembic(env: Path) -> None:
    """Start-up reads the heads without Alembic (it is slow to import); Alembic itself must agree."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from screening.migrate import alembic_config

    assert script_heads() == set(ScriptDirectory.from_config(alembic_config()).get_heads())
    engine = make_engine(Settings())
    assert current_heads(engine) == set()  # never migrated
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    with engine.connect() as conn:
        assert current_heads(engine) == set(MigrationContext.configure(conn).get_current_heads()) == script_heads()
    engine.dispose()


def test_users_add_creates_a_nurse_with_suites(env: Path) -> None:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    result = runner.invoke(app, ["users", "add", "sam", "--role", "nurse", "--password", "a long passphrase here",
                                 "--suite", "Leeds Central", "--suite", "Elland Road"])
    assert result.exit_code == 0, result.output
    engine = make_engine(Settings())
    with make_session_factory(engine)() as s:
        user = s.scalar(select(User).where(User.username == "sam"))
        assert user is not None and user.role == "nurse"
        assert user.custody_suites == ["Leeds Central", "Elland Road"]
        assert user.password_hash.startswith("$argon2id$")
    engine.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "nurse", "--password", "short"], "at least 12"),
        (["--role", "nurse", "--password", "a long passphrase here"], "custody suite"),
        (["--role", "wizard", "--password", "a long passphrase here"], "wizard"),
    ],
)
def test_users_add_refuses_bad_input(env: Path, args: list[str], message: str) -> None:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    result = runner.invoke(app, ["users", "add", "kim", *args])
    assert result.exit_code != 0
    assert message in result.output


def test_serve_refuses_an_unmigrated_database(env: Path) -> None:
    from fastapi.testclient import TestClient

    from screening.app import NotMigrated, create_app

    with pytest.raises(NotMigrated, match="screening migrate"), TestClient(create_app(Settings())):
        pass


def test_migrate_with_the_database_away_logs_why_as_the_service_does_and_ends_1(tmp_path: Path) -> None:
    """compose's migrate step: every line JSON, the exception's type and frames, never its message (which can quote
    a row's values); status 1. Before, a plain traceback with the message."""
    port = free_port()  # nothing listens there: the connection is refused at once
    proc = subprocess.run(
        [sys.executable, "-m", "screening", "migrate"],
        env=served_env(tmp_path, database_url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/screening"),
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines()]
    assert [(e["level"], e["logger"], e["msg"], e["exc_type"]) for e in lines] == [
        ("error", "screening.migrate", "the database schema could not be brought up to date", "OperationalError")]
    assert lines[0]["frames"] and "Traceback" not in proc.stderr and str(port) not in proc.stderr + proc.stdout


def test_migrate_logs_success_as_the_service_does(env: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "screening", "migrate"], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert [(e["level"], e["msg"]) for e in map(json.loads, proc.stderr.splitlines())] == [
        ("info", "database schema is up to date")]


def test_production_refuses_the_placeholder_secret(env: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "screening", "migrate"],
        env=os.environ | {"SCREENING_ENVIRONMENT": "production"},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode != 0
    assert "SCREENING_SECRET_KEY must be set" in proc.stderr


def test_health_needs_no_token(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
