"""`screening migrate` is safe to run from several instances at once (PostgreSQL advisory lock).

Every instance of a scaled-out deployment may run the migration step as it starts; they must not
race each other into half-applied schemas or duplicate version rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from screening import migrate
from tests.conftest import _postgres_database

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
INSTANCES = 3


def test_three_instances_migrating_at_once_all_succeed(tmp_path: Path) -> None:
    for url in _postgres_database():
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCREENING_")}
        env |= {"SCREENING_DATABASE_URL": url, "SCREENING_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
        procs = [subprocess.Popen([sys.executable, "-m", "screening", "migrate"], env=env, cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(INSTANCES)]
        outputs = [p.communicate(timeout=120)[0].decode(errors="replace") for p in procs]
        assert [p.returncode for p in procs] == [0] * INSTANCES, "\n---\n".join(outputs)
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                versions = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
                rows = conn.scalar(text("SELECT count(*) FROM alembic_version"))
                screens = conn.scalar(text("SELECT count(*) FROM screens"))
            assert versions == migrate.script_heads()
            assert rows == len(versions)
            assert screens == 0
        finally:
            engine.dispose()


def test_a_migration_waits_for_another_instances_past_the_serving_lock_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's connections give up on a lock after `LOCK_TIMEOUT`; the migrations' transaction turns that off,
    so an instance whose migration waits longer than that for another instance's still migrates."""
    import threading
    import time

    import psycopg
    from sqlalchemy import make_url

    from screening import db
    from screening.config import Settings

    monkeypatch.setattr(db, "LOCK_TIMEOUT", 1)
    for url in _postgres_database():
        # Another instance migrating: it holds the migrations' lock for 2.5 s.
        other = psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
        other.execute("SELECT pg_advisory_xact_lock(%s)", (migrate._MIGRATION_LOCK_KEY,))
        done = threading.Timer(2.5, other.rollback)
        done.start()
        engine = db.make_engine(Settings(database_url=url, data_dir=tmp_path))
        try:
            started = time.monotonic()
            migrate.upgrade(engine)
            assert time.monotonic() - started >= 2  # it did wait for the other, past the lock timeout
            assert migrate.current_heads(engine) == migrate.script_heads()
        finally:
            done.join()
            other.close()
            engine.dispose()


def test_a_migration_that_computes_between_its_statements_is_not_ended_for_idling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends a service session left idle in its transaction for `IDLE_IN_TRANSACTION_TIMEOUT`; the
    migrations' transaction turns that off, so a migration that computes between its statements (a data backfill,
    say) for longer than that still completes. Here one pauses twice the limit after its first CREATE TABLE."""
    import time

    from sqlalchemy import event

    from screening import db
    from screening.config import Settings

    monkeypatch.setattr(db, "IDLE_IN_TRANSACTION_TIMEOUT", 1)
    paused: list[str] = []
    for url in _postgres_database():
        engine = db.make_engine(Settings(database_url=url, data_dir=tmp_path))

        @event.listens_for(engine, "after_cursor_execute")
        def compute(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            if not paused and statement.lstrip().upper().startswith("CREATE TABLE"):
                paused.append(statement)
                time.sleep(2 * db.IDLE_IN_TRANSACTION_TIMEOUT)  # in the transaction, between two statements

        try:
            migrate.upgrade(engine)
            assert paused, "no migration statement was paused after"
            assert migrate.current_heads(engine) == migrate.script_heads()
        finally:
            engine.dispose()
