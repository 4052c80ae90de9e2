"""The audit trail: coverage, tamper evidence (edit, delete, swap) on both backends, `screening audit
verify`, the append-only trigger on PostgreSQL, and an administrator's view of a screen's history."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from screening.audit.models import AuditEntry
from screening.audit.service import VerifyResult, verify_chain
from screening.auth.models import Role
from screening.cli import app as cli
from tests.factories import answer, create_screen, give_consent, headers_for, make_user

PROBLEM = "application/problem+json"


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    monkeypatch.setenv("SCREENING_DATABASE_URL", database_url)
    monkeypatch.setenv("SCREENING_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SCREENING_ENVIRONMENT", "test")


def _screen_with_history(client: TestClient, session: Session) -> tuple[dict[str, str], str]:
    h = headers_for(client, make_user(session))
    s = create_screen(client, h)
    give_consent(client, h, s["id"])
    answer(client, h, s["id"], {"phq9_1": 2, "phq9_2": 1})
    answer(client, h, s["id"], {"phq9_1": 3})
    assert client.get(f"/api/v1/screens/{s['id']}", headers=h).status_code == 200
    return h, s["id"]


def _ids(session: Session) -> list[int]:
    # Ends the read at once: on SQLite every transaction holds the write lock (BEGIN IMMEDIATE).
    session.rollback()
    ids = list(session.scalars(select(AuditEntry.id).order_by(AuditEntry.id)))
    session.rollback()
    return ids


def _verify(session: Session) -> VerifyResult:
    session.rollback()
    try:
        return verify_chain(session)
    finally:
        session.rollback()


@contextmanager
def _bypassing_append_only(engine: Engine) -> Iterator[None]:
    """What an attacker with the database owner's rights could do: switch the PostgreSQL trigger off."""
    pg = engine.dialect.name == "postgresql"
    if pg:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only"))
    try:
        yield
    finally:
        if pg:
            with engine.begin() as conn:
                conn.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only"))


def _verify_cli() -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["audit", "verify"])
    return result.exit_code, result.output


class TestCoverage:
    def test_every_personal_data_request_is_recorded_with_who_what_where(
        self, client: TestClient, session: Session
    ) -> None:
        _, screen_id = _screen_with_history(client, session)
        session.rollback()
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.record_id == screen_id).order_by(AuditEntry.id)
        ).all()
        actions = [r.action for r in rows]
        assert actions == ["screen.create", "screen.consent.set", "screen.answers.update", "screen.answers.update",
                           "screen.read"]
        assert all(r.role == "nurse" and r.actor.startswith("nurse") and r.actor_id for r in rows)
        assert all(r.source_ip == "testclient" and r.at is not None for r in rows)
        # Ids only: the answer values never reach the trail.
        assert rows[2].detail == {"items": ["phq9_1", "phq9_2"]}

    def test_a_refused_request_leaves_no_half_written_entry(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h)
        before = _ids(session)
        r = client.patch(f"/api/v1/screens/{s['id']}/answers", json={"answers": {"phq9_1": 99}}, headers=h)
        assert r.status_code == 422
        assert _ids(session) == before


class TestTamperEvidence:
    def test_intact_trail_verifies_and_cli_exits_0(self, client: TestClient, session: Session, cli_env: None) -> None:
        _screen_with_history(client, session)
        assert _verify(session).ok
        code, out = _verify_cli()
        assert code == 0, out
        assert "intact" in out

    def test_edited_entry_is_named(self, client: TestClient, session: Session, engine: Engine, cli_env: None) -> None:
        _screen_with_history(client, session)
        victim = _ids(session)[3]
        with _bypassing_append_only(engine), engine.begin() as conn:
            conn.execute(text("UPDATE audit_entries SET actor = 'someone-else' WHERE id = :id"), {"id": victim})
        result = _verify(session)
        assert (result.ok, result.first_bad_id) == (False, victim)
        assert "edited" in (result.reason or "")
        code, out = _verify_cli()
        assert code == 1
        assert f"entry {victim}" in out

    def test_deleted_entry_is_detected_at_the_next(
        self, client: TestClient, session: Session, engine: Engine, cli_env: None
    ) -> None:
        _screen_with_history(client, session)
        ids = _ids(session)
        with _bypassing_append_only(engine), engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_entries WHERE id = :id"), {"id": ids[2]})
        result = _verify(session)
        assert (result.ok, result.first_bad_id) == (False, ids[3])
        assert "deleted" in (result.reason or "")
        code, out = _verify_cli()
        assert code == 1
        assert f"entry {ids[3]}" in out

    def test_swapped_entries_are_detected(self, client: TestClient, session: Session, engine: Engine) -> None:
        _screen_with_history(client, session)
        a, b = _ids(session)[2:4]
        # Reorder: the two entries trade places in the chain (their ids swap through a spare id).
        with _bypassing_append_only(engine), engine.begin() as conn:
            for old, new in ((a, -1), (b, a), (-1, b)):
                conn.execute(text("UPDATE audit_entries SET id = :new WHERE id = :old"), {"old": old, "new": new})
        result = _verify(session)
        assert (result.ok, result.first_bad_id) == (False, a)

    def test_postgres_refuses_update_and_delete(self, client: TestClient, session: Session, engine: Engine) -> None:
        if engine.dialect.name != "postgresql":
            pytest.skip("the append-only trigger is PostgreSQL's; SQLite relies on the hash chain alone")
        _screen_with_history(client, session)
        first = _ids(session)[0]
        for sql in ("UPDATE audit_entries SET actor = 'x' WHERE id = :id", "DELETE FROM audit_entries WHERE id = :id"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(sql), {"id": first})
        assert _verify(session).ok


class TestScreenHistory:
    def test_without_token_is_401(self, client: TestClient) -> None:
        r = client.get("/api/v1/screens/x/history")
        assert r.status_code == 401
        assert r.headers["content-type"] == PROBLEM

    def test_nurse_even_of_the_suite_is_403(self, client: TestClient, session: Session) -> None:
        h, screen_id = _screen_with_history(client, session)
        assert client.get(f"/api/v1/screens/{screen_id}/history", headers=h).status_code == 403

    def test_unknown_screen_is_404(self, client: TestClient, session: Session) -> None:
        admin = headers_for(client, make_user(session, Role.admin))
        r = client.get("/api/v1/screens/no-such-screen/history", headers=admin)
        assert r.status_code == 404
        assert r.headers["content-type"] == PROBLEM

    def test_admin_reads_who_did_what_without_answer_values(self, client: TestClient, session: Session) -> None:
        _, screen_id = _screen_with_history(client, session)
        admin = headers_for(client, make_user(session, Role.admin))
        r = client.get(f"/api/v1/screens/{screen_id}/history", headers=admin)
        assert r.status_code == 200
        body = r.json()
        assert body["exists"] is True
        assert [e["action"] for e in body["entries"]][:2] == ["screen.create", "screen.consent.set"]
        assert [(c["item_id"], c["revision"]) for c in body["answer_changes"]] == [
            ("phq9_1", 1), ("phq9_2", 1), ("phq9_1", 2)]
        assert all("value" not in c for c in body["answer_changes"])
        # Reading the history is itself on the record.
        again = client.get(f"/api/v1/screens/{screen_id}/history", headers=admin).json()
        assert again["entries"][-1]["action"] == "screen.history.read"
        assert again["entries"][-1]["role"] == "admin"
