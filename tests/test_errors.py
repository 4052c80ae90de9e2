"""Which database errors are the database being away (503, worth sending again) and which are the service's own."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import PoolTimeout
from sqlalchemy import exc as sa_exc

from screening.errors import database_unavailable


@pytest.mark.parametrize("exc", [
    psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"),
    PoolTimeout("couldn't get a connection after 30.00 sec"),
    psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
    psycopg.errors.DeadlockDetected("deadlock detected"),
    psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"),
    psycopg.errors.IdleInTransactionSessionTimeout("terminating connection due to idle-in-transaction timeout"),
    sqlite3.OperationalError("database is locked"),
    sa_exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked")),
    sa_exc.OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused")),
    sa_exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
    sa_exc.InterfaceError("SELECT 1", {}, Exception("closed"), connection_invalidated=True),
], ids=lambda e: type(e).__name__)
def test_the_database_away_is_unavailable(exc: Exception) -> None:
    assert database_unavailable(exc)


@pytest.mark.parametrize("exc", [
    sqlite3.OperationalError("no such table: screens"),
    sa_exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("no such column: x")),
    sa_exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")),
    psycopg.errors.UniqueViolation("duplicate key value violates unique constraint"),
    ValueError("a bug"),
], ids=lambda e: type(e).__name__)
def test_the_services_own_faults_are_not(exc: Exception) -> None:
    assert not database_unavailable(exc)


def test_a_request_that_waits_out_sqlites_write_lock_is_answered_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """On SQLite, a writer outside the service (a maintenance script, say) can hold the database's write lock. The
    service's writers wait for it up to `BUSY_TIMEOUT_MS`, then the request is answered 503 with Retry-After, not
    500: nothing is saved, a read is not served unaudited, and once the lock is free the same requests go through."""
    from sqlalchemy import func, select

    from screening import db
    from screening.screens.models import AnswerEvent
    from tests.conftest import _migrate
    from tests.factories import served_on

    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 1000)  # the service's own is 15 s
    path = tmp_path / "screening.db"
    url = f"sqlite:///{path}"
    _migrate(url, tmp_path)
    token = "metrics-token-0123456789abcdefghijklmnop"
    with served_on(url, tmp_path, metrics_token=token) as (client, session, h, screen_url):

        def unavailable() -> dict[str, float]:
            """The counter's samples in /metrics (this process's registry, which other tests here add to as well)."""
            text = client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).text
            return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                    if line.startswith("screening_database_unavailable_total{")}

        patch = {"answers": {"phq9_1": 2}}
        before = unavailable()
        outside = sqlite3.connect(path, isolation_level=None)
        try:
            outside.execute("BEGIN IMMEDIATE")  # the write lock, held outside the service's writer gate
            for method, target, body in (("PATCH", screen_url + "/answers", patch), ("GET", screen_url, None),
                                         ("POST", "/api/v1/screens", {"custody_record": "CR/9/26",
                                                                      "date_of_birth": "1990-01-01",
                                                                      "sex": "female",
                                                                      "custody_suite": "Leeds Central"})):
                started = time.monotonic()
                r = client.request(method, target, json=body, headers=h)
                took = time.monotonic() - started
                assert (r.status_code, r.headers.get("retry-after")) == (503, "1"), (method, target, r.text)
                assert r.headers["content-type"] == "application/problem+json"
                assert 1 <= took < 3, f"{method} {target} was answered after {took:.1f} s"
        finally:
            outside.rollback()
            outside.close()
        warned = [r.getMessage() for r in caplog.records if r.name == "screening.errors"]
        assert [w.split(": ")[0] for w in warned] == [
            "database unavailable on PATCH /api/v1/screens/{screen_id}/answers",
            "database unavailable on GET /api/v1/screens/{screen_id}",
            "database unavailable on POST /api/v1/screens"], warned
        # Counted by route and by the driver's error (sqlite3's, for the ORM's route too), for an operator's alert.
        counted = {sample: n - before.get(sample, 0) for sample, n in unavailable().items()}
        assert {sample: n for sample, n in counted.items() if n} == {
            f'screening_database_unavailable_total{{error="OperationalError",method="{method}",route="{route}"}}': 1
            for method, route in (("PATCH", "/api/v1/screens/{screen_id}/answers"),
                                  ("GET", "/api/v1/screens/{screen_id}"), ("POST", "/api/v1/screens"))}
        assert client.patch(screen_url + "/answers", json=patch, headers=h).status_code == 200
        assert client.get(screen_url, headers=h).json()["answers"] == {"phq9_1": 2}
        session.rollback()
        assert session.scalar(select(func.count()).select_from(AnswerEvent)) == 1  # the acknowledged change alone
