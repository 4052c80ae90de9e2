"""Security headers, strict CORS, request size limits, no personal data in logs, and refusing to start
in production with a placeholder secret."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from screening.app import create_app
from screening.cli import app as cli
from screening.config import PLACEHOLDER_SECRET, Settings
from tests.factories import answer, create_screen, give_consent, headers_for, make_user

PROBLEM = "application/problem+json"


class TestSecurityHeaders:
    def test_every_answer_carries_them(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        for r in (client.get("/health"), client.get("/api/v1/screens", headers=h), client.get("/api/v1/nowhere")):
            csp = r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp
            assert "script-src 'self'" in csp
            assert "unsafe-inline" not in csp
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["referrer-policy"] == "no-referrer"
            assert "strict-transport-security" not in r.headers  # plain HTTP: HSTS would be ignored

    def test_api_answers_are_never_cached(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        assert client.get("/api/v1/screens", headers=h).headers["cache-control"] == "no-store"
        assert client.get("/api/v1/screens").headers["cache-control"] == "no-store"  # errors too

    def test_hsts_behind_tls(self, client: TestClient) -> None:
        r = client.get("https://testserver/health")
        assert r.headers["strict-transport-security"].startswith("max-age=")


class TestCors:
    def test_no_cross_origin_access_by_default(self, client: TestClient) -> None:
        r = client.options("/api/v1/screens", headers={"Origin": "https://evil.example",
                                                        "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in r.headers
        r = client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers

    def test_only_configured_origins(self, settings: Settings, engine: Engine) -> None:
        allowed = settings.model_copy(update={"cors_origins": ["https://tablet.example"]})
        with TestClient(create_app(allowed)) as c:
            ok = c.options("/api/v1/screens", headers={"Origin": "https://tablet.example",
                                                        "Access-Control-Request-Method": "GET"})
            assert ok.headers["access-control-allow-origin"] == "https://tablet.example"
            assert "access-control-allow-credentials" not in ok.headers
            other = c.get("/health", headers={"Origin": "https://evil.example"})
            assert "access-control-allow-origin" not in other.headers


class TestRequestSizeLimit:
    def test_declared_length_over_the_limit_is_413(
        self, client: TestClient, session: Session, settings: Settings
    ) -> None:
        h = headers_for(client, make_user(session))
        r = client.post("/api/v1/screens", content=b"x" * (settings.max_request_bytes + 1),
                        headers=h | {"content-type": "application/json"})
        assert r.status_code == 413
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["title"] == "Request too large"

    def test_streamed_body_over_the_limit_is_413(
        self, client: TestClient, session: Session, settings: Settings
    ) -> None:
        h = headers_for(client, make_user(session))

        def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
            for _ in range(settings.max_request_bytes // 65536 + 2):
                yield b" " * 65536

        r = client.post("/api/v1/screens", content=chunks(), headers=h | {"content-type": "application/json"})
        assert r.status_code == 413
        assert r.headers["content-type"] == PROBLEM

    def test_body_under_the_limit_is_served(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        create_screen(client, h)


class TestProductionSecrets:
    def test_settings_refuse_the_placeholder(self) -> None:
        with pytest.raises(ValidationError, match="SCREENING_SECRET_KEY"):
            Settings(environment="production", person_key="p" * 40)
        with pytest.raises(ValidationError, match="SCREENING_PERSON_KEY"):
            Settings(environment="production", secret_key="s" * 40)
        with pytest.raises(ValidationError, match="at least 32"):
            Settings(environment="production", secret_key="short", person_key="p" * 40)

    def test_cli_will_not_start(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("SCREENING_ENVIRONMENT", "production")
        monkeypatch.setenv("SCREENING_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("SCREENING_SECRET_KEY", PLACEHOLDER_SECRET)
        monkeypatch.setenv("SCREENING_PERSON_KEY", "p" * 40)
        for command in (["serve"], ["migrate"], ["audit", "verify"]):
            result = CliRunner().invoke(cli, command)
            assert result.exit_code != 0, command
            assert isinstance(result.exception, ValidationError)
        assert not (tmp_path / "screening.db").exists()  # refused before touching anything

    def test_create_app_will_not_start(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SCREENING_ENVIRONMENT", "production")
        with pytest.raises(ValidationError):
            create_app()


CUSTODY_RECORD = "CR/LEAK-9137/26"
PERSON_REF = "PNC 91/555444Q"
DOB = "1987-06-05"
LOGGERS = ("", "screening", "uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy", "sqlalchemy.engine",
           "sqlalchemy.engine.Engine", "sqlalchemy.pool", "alembic", "fastapi", "starlette", "httpx", "argon2")


def test_no_personal_data_in_logs(settings: Settings, engine: Engine, session: Session,
                                  caplog: pytest.LogCaptureFixture) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    # A fresh app after the levels are set: SQLAlchemy decides at connect time whether to log statements.
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        h = headers_for(client, make_user(session))
        body = {"custody_record": CUSTODY_RECORD, "date_of_birth": DOB, "sex": "female", "person_ref": PERSON_REF,
                "ethnicity": "Irish Traveller"}
        s = client.post("/api/v1/screens", json=body, headers=h | {"Idempotency-Key": "leak-1"}).json()
        # A replay with a different body (409), an invalid answer (422), malformed JSON (400): error paths log too.
        client.post("/api/v1/screens", json=body | {"custody_record": CUSTODY_RECORD + "X"},
                    headers=h | {"Idempotency-Key": "leak-1"})
        bad_date = {"custody_record": CUSTODY_RECORD, "date_of_birth": "1987-13-45"}
        client.post("/api/v1/screens", json=bad_date, headers=h)
        client.post("/api/v1/screens", content=f'{{"custody_record": "{CUSTODY_RECORD}"', headers=h)
        give_consent(client, h, s["id"])
        answer(client, h, s["id"], {"phq9_1": 2, "risk_plan": True})
        client.patch(f"/api/v1/screens/{s['id']}/answers", json={"answers": {"phq9_2": CUSTODY_RECORD}}, headers=h)
        client.get(f"/api/v1/screens/{s['id']}", headers=h)
        client.get("/api/v1/screens", params={"suite": "Leeds Central"}, headers=h)
        client.post(f"/api/v1/screens/{s['id']}/finalise", headers=h)
        client.post("/api/v1/auth/token", data={"username": CUSTODY_RECORD, "password": PERSON_REF})
    # The capture worked: the SQL went through the logs (so the check below could have failed).
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records)
    texts = [caplog.text] + [repr(r.args) for r in caplog.records]
    blob = "\n".join(texts + [str(getattr(r, "exc_text", "")) for r in caplog.records])
    for secret in (CUSTODY_RECORD, "LEAK-9137", PERSON_REF, "555444", DOB, "1987, 6, 5", "05/06/1987",
                   "Irish Traveller"):
        assert secret not in blob, f"{secret!r} appeared in the logs"
