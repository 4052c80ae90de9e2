"""Builders for test data: users, tokens and screens, through the real services and API."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from screening.auth.models import Role, User
from screening.auth.service import create_user
from screening.config import Settings
from screening.db import make_engine, make_session_factory, utcnow
from screening.screens.models import Screen

PASSWORD = "a long test passphrase"
_seq = itertools.count(1)


def make_user(session: Session, role: Role | str = Role.nurse, suites: list[str] | None = None, **kw: Any) -> User:
    role = Role(role)
    if suites is None:
        suites = ["Leeds Central"] if role is Role.nurse else []
    user = create_user(session, kw.pop("username", f"{role.value}{next(_seq)}"), kw.pop("password", PASSWORD), role,
                       custody_suites=suites, **kw)
    session.commit()
    return user


def token_for(client: TestClient, username: str, password: str = PASSWORD) -> str:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def headers_for(client: TestClient, user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(client, user.username)}"}


def screen_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"custody_record": f"CR/{next(_seq):05d}/26", "date_of_birth": "1991-04-12", "sex": "male"}
    body.update(overrides)
    return body


def create_screen(client: TestClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    r = client.post("/api/v1/screens", json=screen_body(**overrides), headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def give_consent(client: TestClient, headers: dict[str, str], screen_id: str, **overrides: Any) -> dict[str, Any]:
    body = {"screening": True, "share_with_health": True, "share_with_court": True, "capacity": "has_capacity"}
    body.update(overrides)
    r = client.put(f"/api/v1/screens/{screen_id}/consent", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def answer(client: TestClient, headers: dict[str, str], screen_id: str, answers: dict[str, Any]) -> dict[str, Any]:
    r = client.patch(f"/api/v1/screens/{screen_id}/answers", json={"answers": answers}, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def backdate(session: Session, screen_id: str, days: int) -> None:
    """Move a screen's opening `days` into the past (repeat contacts are counted over the last 12 months)."""
    session.execute(update(Screen).where(Screen.id == screen_id).values(created_at=utcnow() - timedelta(days=days)))
    session.commit()


def earlier_contact(client: TestClient, session: Session, headers: dict[str, str], answers: dict[str, Any],
                    days_ago: int, **screen: Any) -> dict[str, Any]:
    """A screen opened `days_ago` days ago (pass `person_ref` to link it), consented and answered."""
    s = create_screen(client, headers, **screen)
    give_consent(client, headers, s["id"])
    answer(client, headers, s["id"], answers)
    backdate(session, s["id"], days_ago)
    return s


@contextmanager
def served_on(database_url: str, tmp_path: Path, **settings: Any) -> Iterator[tuple[TestClient, Session, dict[str, str], str]]:
    """The app on a migrated database (two hot connections unless `settings` say otherwise), in a TestClient, with a
    nurse and one screen she has read once: the client, a session on the database, her headers and the screen's URL.
    The audit chain is checked on the way out."""
    from screening.app import create_app
    from screening.audit.service import verify_chain
    from tests.conftest import TEST_SECRET

    config = Settings(**{"environment": "test", "database_url": database_url, "data_dir": tmp_path,
                         "secret_key": TEST_SECRET, "person_key": TEST_SECRET + "-person", "db_concurrency": 2,
                         **settings})
    engine = make_engine(config)
    session = make_session_factory(engine)()
    try:
        with TestClient(create_app(config), raise_server_exceptions=False) as client:
            h = headers_for(client, make_user(session))
            url = f"/api/v1/screens/{create_screen(client, h)['id']}"
            session.rollback()
            assert client.get(url, headers=h).status_code == 200
            yield client, session, h, url
        session.rollback()
        assert verify_chain(session).ok
    finally:
        session.close()
        engine.dispose()
