"""Which database errors are the database being away (503, worth sending again) and which are the service's own."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import PoolTimeout
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

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


def test_an_unhandled_error_is_answered_500_with_its_reference_and_logged_without_its_message(
    client: TestClient, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    """The service's own fault: a 500 that claims nothing about what was saved (the error may have come after a
    commit) and gives the request's id to report it by, the id its log lines carry. The log names the route's
    template and the error's type, never its message, which may hold what was sent."""
    from screening.auth.dependencies import get_principal
    from screening.errors import PROBLEM_MEDIA_TYPE, internal_error_detail
    from screening.ops.logging import JsonFormatter, RequestIdFilter
    from tests.factories import headers_for, make_user

    h = headers_for(client, make_user(session))

    def broken() -> None:
        raise RuntimeError("CR/01234/26 Jane Example")

    lines: list[str] = []  # as the service's handler writes them: JSON, its filter reading the request's id

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Lines()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logging.getLogger("screening.errors").addHandler(handler)
    client.app.dependency_overrides[get_principal] = broken  # type: ignore[attr-defined]
    try:
        r = client.get("/api/v1/auth/me", headers={**h, "X-Request-ID": "report-me-0123"})
    finally:
        client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
        logging.getLogger("screening.errors").removeHandler(handler)
    assert (r.status_code, r.headers["content-type"]) == (500, PROBLEM_MEDIA_TYPE)
    assert r.headers["x-request-id"] == "report-me-0123"
    assert r.json()["detail"] == internal_error_detail("report-me-0123")
    assert "report-me-0123" in r.json()["detail"] and "saved" not in r.json()["detail"]
    logged = [rec for rec in caplog.records if rec.name == "screening.errors"]
    assert [rec.getMessage() for rec in logged] == ["unhandled error on GET /api/v1/auth/me: RuntimeError"]
    assert len(lines) == 1 and json.loads(lines[0])["request_id"] == "report-me-0123"  # as the request's line has it
    assert not any("Jane" in rec.getMessage() or "CR/01234" in rec.getMessage() for rec in caplog.records)
