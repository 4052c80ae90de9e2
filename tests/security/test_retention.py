"""`screening retention purge`: personal data past the retention period goes, counts and the audit
trail stay, and the purge is itself on the record."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from screening.audit.models import AuditEntry
from screening.audit.service import verify_chain
from screening.auth.models import Role
from screening.cli import app as cli
from screening.db import utcnow
from screening.retention.models import RetainedStatistic
from screening.screens.models import Answer, AnswerEvent, Consent, Screen
from tests.factories import answer, create_screen, give_consent, headers_for, make_user


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    monkeypatch.setenv("SCREENING_DATABASE_URL", database_url)
    monkeypatch.setenv("SCREENING_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SCREENING_RETENTION_DAYS", "400")


def _count(session: Session, model: type) -> int:
    session.rollback()
    n = session.scalar(select(func.count()).select_from(model)) or 0
    session.rollback()
    return n


def _age(engine: Engine, screen_id: str, days: int) -> None:
    with engine.begin() as conn:
        conn.execute(update(Screen).where(Screen.id == screen_id).values(created_at=utcnow() - timedelta(days=days)))


@pytest.fixture
def screens(client: TestClient, session: Session, engine: Engine) -> dict[str, str]:
    h = headers_for(client, make_user(session))
    ids = {}
    for name, days in (("old_final", 500), ("old_draft", 450), ("recent", 10)):
        s = create_screen(client, h)
        give_consent(client, h, s["id"])
        answer(client, h, s["id"], {"phq9_1": 1})
        if name == "old_final":
            assert client.post(f"/api/v1/screens/{s['id']}/finalise", headers=h).status_code == 200
        _age(engine, s["id"], days)
        ids[name] = s["id"]
    return ids


def test_dry_run_counts_and_deletes_nothing(screens: dict[str, str], session: Session, cli_env: None) -> None:
    result = CliRunner().invoke(cli, ["retention", "purge", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would delete 2 screens older than 400 days" in result.output
    assert _count(session, Screen) == 3
    session.rollback()
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "retention.purge")).one()
    session.rollback()
    assert entry.detail == {"older_than_days": 400, "screens": 2, "dry_run": True}


def test_purge_removes_old_personal_data_and_keeps_counts_and_trail(
    screens: dict[str, str], session: Session, client: TestClient, cli_env: None
) -> None:
    result = CliRunner().invoke(cli, ["retention", "purge", "--older-than", "30"])
    assert result.exit_code == 0, result.output
    assert "deleted 2 screens" in result.output
    session.rollback()
    assert list(session.scalars(select(Screen.id))) == [screens["recent"]]
    # Everything hanging off a purged screen goes with it.
    for model in (Answer, AnswerEvent, Consent):
        left = set(session.scalars(select(model.screen_id)))  # type: ignore[attr-defined]
        assert left == {screens["recent"]}, model.__name__
    stats = {(s.status, s.screens) for s in session.scalars(select(RetainedStatistic))}
    assert stats == {("final", 1), ("draft", 1)}
    purged = set(session.scalars(select(AuditEntry.record_id).where(AuditEntry.action == "screen.purge")))
    assert purged == {screens["old_final"], screens["old_draft"]}
    assert verify_chain(session).ok  # the trail survives the purge intact
    session.rollback()
    # An administrator can still see what happened to a purged screen.
    admin = headers_for(client, make_user(session, Role.admin))
    body = client.get(f"/api/v1/screens/{screens['old_final']}/history", headers=admin).json()
    assert body["exists"] is False
    assert body["entries"][0]["action"] == "screen.create"
    assert "screen.purge" in [e["action"] for e in body["entries"]]


def test_nothing_old_enough_deletes_nothing(screens: dict[str, str], session: Session, cli_env: None) -> None:
    result = CliRunner().invoke(cli, ["retention", "purge", "--older-than", "1000"])
    assert result.exit_code == 0, result.output
    assert _count(session, Screen) == 3
    assert _count(session, RetainedStatistic) == 0
