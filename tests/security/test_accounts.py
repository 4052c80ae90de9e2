"""Accounts: login throttling shared through the database, revocation by disabling, the password
policy on every change, and one answer for every kind of failed sign-in."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from screening.app import create_app
from screening.audit.models import AuditEntry
from screening.auth.models import LoginAttempt, Role
from screening.cli import app as cli
from screening.config import Settings
from tests.factories import PASSWORD, answer, create_screen, give_consent, headers_for, make_user, screen_body

PROBLEM = "application/problem+json"
TOKEN = "/api/v1/auth/token"


def _login(client: TestClient, username: str, password: str = PASSWORD) -> tuple[int, dict[str, str], dict[str, str]]:
    r = client.post(TOKEN, data={"username": username, "password": password})
    return r.status_code, dict(r.headers), r.json()


def _actions(session: Session) -> list[str]:
    session.rollback()
    actions = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    session.rollback()
    return actions


@pytest.fixture
def second_worker(settings: Settings) -> Iterator[TestClient]:
    """Another app instance on the same database, as a second uvicorn worker would be."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


class TestLoginThrottling:
    def test_repeated_failures_answer_429_with_retry_after_and_are_audited(
        self, client: TestClient, second_worker: TestClient, session: Session, settings: Settings
    ) -> None:
        user = make_user(session)
        session.expunge_all()
        for i in range(settings.login_max_failures):
            # Alternate workers: the count lives in the database, not in one process.
            status, _, _ = _login(client if i % 2 else second_worker, user.username, "wrong password here")
            assert status == 401
        status, headers, body = _login(client, user.username)  # even the right password waits now
        assert status == 429
        assert headers["content-type"] == PROBLEM
        assert 0 < int(headers["retry-after"]) <= settings.login_window_seconds
        assert body["detail"] == "Too many failed sign-ins; try again later."
        actions = _actions(session)
        assert actions.count("auth.login.failed") == settings.login_max_failures
        assert actions[-1] == "auth.login.throttled"
        stored = session.scalars(select(LoginAttempt.username_key)).all()
        session.rollback()
        assert len(stored) == settings.login_max_failures
        assert user.username not in stored  # a keyed hash, never the typed name

    def test_unknown_usernames_are_throttled_alike(self, client: TestClient, settings: Settings) -> None:
        for _ in range(settings.login_max_failures):
            assert _login(client, "nobody-here", "wrong password here")[0] == 401
        assert _login(client, "nobody-here", "wrong password here")[0] == 429

    def test_many_usernames_from_one_address_are_throttled(self, settings: Settings, session: Session) -> None:
        strict = settings.model_copy(update={"login_ip_max_failures": 3})
        user = make_user(session)
        with TestClient(create_app(strict), raise_server_exceptions=False) as c:
            for i in range(3):
                assert _login(c, f"guess{i}", "wrong password here")[0] == 401
            assert _login(c, user.username)[0] == 429

    def test_success_forgives_earlier_failures(self, client: TestClient, session: Session, settings: Settings) -> None:
        user = make_user(session)
        for _ in range(settings.login_max_failures - 1):
            _login(client, user.username, "wrong password here")
        assert _login(client, user.username)[0] == 200
        assert _login(client, user.username, "wrong password here")[0] == 401
        assert _login(client, user.username)[0] == 200


class TestNoEnumeration:
    def test_unknown_wrong_and_disabled_look_the_same(self, client: TestClient, session: Session) -> None:
        known = make_user(session)
        disabled = make_user(session)
        admin = headers_for(client, make_user(session, Role.admin))
        assert client.post(f"/api/v1/users/{disabled.id}/disable", headers=admin).status_code == 200
        cases = {"unknown": ("no-such-user", PASSWORD), "wrong": (known.username, "wrong password here"),
                 "disabled": (disabled.username, PASSWORD)}
        answers = {}
        timings: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(3):
            for name, (u, p) in cases.items():
                t = time.perf_counter()
                status, headers, body = _login(client, u, p)
                timings[name].append(time.perf_counter() - t)
                answers[name] = (status, headers["content-type"], body)
        assert answers["unknown"] == answers["wrong"] == answers["disabled"]
        assert answers["wrong"][0] == 401
        # Every path verifies an Argon2 hash, so none is an order of magnitude faster than another.
        medians = {k: statistics.median(v) for k, v in timings.items()}
        assert min(medians.values()) > max(medians.values()) / 5, medians


class TestUsersAdmin:
    def test_without_token_is_401(self, client: TestClient) -> None:
        assert client.get("/api/v1/users").status_code == 401

    def test_nurse_is_403(self, client: TestClient, session: Session) -> None:
        assert client.get("/api/v1/users", headers=headers_for(client, make_user(session))).status_code == 403

    def test_weak_password_is_refused_naming_the_field(self, client: TestClient, session: Session) -> None:
        admin = headers_for(client, make_user(session, Role.admin))
        r = client.post("/api/v1/users", json={"username": "newcourt", "password": "newcourt2026", "role": "court"},
                        headers=admin)
        assert r.status_code == 422
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["errors"][0]["field"] == "password"

    def test_admin_creates_and_lists(self, client: TestClient, session: Session) -> None:
        admin = headers_for(client, make_user(session, Role.admin))
        r = client.post("/api/v1/users", json={"username": "nurse.b", "password": "correct horse battery",
                                               "role": "nurse", "custody_suites": ["Bradford"]}, headers=admin)
        assert r.status_code == 201, r.text
        assert r.json()["custody_suites"] == ["Bradford"]
        assert "password_hash" not in r.json()
        names = [u["username"] for u in client.get("/api/v1/users", headers=admin).json()]
        assert "nurse.b" in names
        assert _login(client, "nurse.b", "correct horse battery")[0] == 200
        assert "user.create" in _actions(session)

    def test_nurse_without_a_suite_is_refused(self, client: TestClient, session: Session) -> None:
        admin = headers_for(client, make_user(session, Role.admin))
        r = client.post("/api/v1/users", json={"username": "nurse.c", "password": "correct horse battery",
                                               "role": "nurse"}, headers=admin)
        assert r.status_code == 422


class TestRevocation:
    def test_disabling_ends_existing_tokens_at_once(self, client: TestClient, session: Session) -> None:
        nurse = make_user(session)
        h = headers_for(client, nurse)
        admin = headers_for(client, make_user(session, Role.admin))
        session.expunge_all()  # keep plain attributes: reading the audit below ends the session's transaction
        assert client.get("/api/v1/auth/me", headers=h).status_code == 200
        r = client.post(f"/api/v1/users/{nurse.id}/disable", headers=admin)
        assert r.status_code == 200
        assert r.json()["active"] is False
        assert client.get("/api/v1/auth/me", headers=h).status_code == 401
        assert _login(client, nurse.username)[0] == 401
        assert "user.disable" in _actions(session)
        # Re-enabling lets them sign in again, but the old token stays dead.
        assert client.post(f"/api/v1/users/{nurse.id}/enable", headers=admin).status_code == 200
        assert client.get("/api/v1/auth/me", headers=h).status_code == 401
        assert _login(client, nurse.username)[0] == 200

    def test_the_tablets_hot_routes_check_revocation_and_expiry_on_every_request(
        self, client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Screens, answers and the assessment run their unit of work in one call (auth.dependencies.Work),
        and verified token signatures are cached per process: neither may outlive a revocation or an expiry."""
        import screening.auth.dependencies as deps

        nurse = make_user(session)
        h = headers_for(client, nurse)
        admin = headers_for(client, make_user(session, Role.admin))
        session.expunge_all()
        screen = create_screen(client, h)
        give_consent(client, h, screen["id"])
        answer(client, h, screen["id"], {"phq9_1": 1})
        sid = screen["id"]
        assert client.get(f"/api/v1/screens/{sid}", headers=h).status_code == 200
        assert client.get(f"/api/v1/screens/{sid}/assessment", headers=h).status_code == 200

        # Expiry: the cached claims are re-checked against the clock.
        claims = deps.token_claims(client.app.state.settings.secret_key.get_secret_value(),  # type: ignore[attr-defined]
                                   h["Authorization"].removeprefix("Bearer "))
        real_time = time.time
        monkeypatch.setattr(deps.time, "time", lambda: claims.expires_at + 1)
        assert client.get(f"/api/v1/screens/{sid}", headers=h).status_code == 401
        monkeypatch.setattr(deps.time, "time", real_time)
        assert client.get(f"/api/v1/screens/{sid}", headers=h).status_code == 200

        # Revocation: read from the database on every request, on every hot route.
        assert client.post(f"/api/v1/users/{nurse.id}/disable", headers=admin).status_code == 200
        assert client.get(f"/api/v1/screens/{sid}", headers=h).status_code == 401
        assert client.get(f"/api/v1/screens/{sid}/assessment", headers=h).status_code == 401
        assert client.post("/api/v1/screens", json=screen_body(), headers=h).status_code == 401
        r = client.patch(f"/api/v1/screens/{sid}/answers", json={"answers": {"phq9_1": 3}}, headers=h)
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        # Nothing was written for the revoked token.
        assert client.post(f"/api/v1/users/{nurse.id}/enable", headers=admin).status_code == 200
        fresh = headers_for(client, nurse)
        assert client.get(f"/api/v1/screens/{sid}", headers=fresh).json()["answers"]["phq9_1"] == 1

    def test_cli_disable(self, client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch,
                         database_url: str, tmp_path: Path) -> None:
        monkeypatch.setenv("SCREENING_DATABASE_URL", database_url)
        monkeypatch.setenv("SCREENING_DATA_DIR", str(tmp_path))
        nurse = make_user(session)
        h = headers_for(client, nurse)
        result = CliRunner().invoke(cli, ["users", "disable", nurse.username])
        assert result.exit_code == 0, result.output
        assert client.get("/api/v1/auth/me", headers=h).status_code == 401
        assert CliRunner().invoke(cli, ["users", "disable", "no-such-user"]).exit_code == 2

    def test_changing_own_password_applies_the_policy_and_revokes_tokens(
        self, client: TestClient, session: Session
    ) -> None:
        nurse = make_user(session)
        h = headers_for(client, nurse)
        session.expunge_all()
        weak = client.post("/api/v1/users/me/password", json={"password": nurse.username + "-2026-x"}, headers=h)
        assert weak.status_code == 422
        assert weak.json()["errors"][0]["field"] == "password"
        r = client.post("/api/v1/users/me/password", json={"password": "a fresh long phrase"}, headers=h)
        assert r.status_code == 204
        assert client.get("/api/v1/auth/me", headers=h).status_code == 401
        assert _login(client, nurse.username)[0] == 401
        assert _login(client, nurse.username, "a fresh long phrase")[0] == 200
        session.rollback()
        assert session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "user.password.change")) == 1
        session.rollback()
