"""Every write of the spine leaves a hash-chained audit entry committed with it."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from screening.audit.models import AuditEntry
from screening.audit.service import verify_chain
from tests.factories import answer, create_screen, give_consent, headers_for, make_user


def test_screen_lifecycle_is_audited_and_the_chain_verifies(client: TestClient, session: Session) -> None:
    h = headers_for(client, make_user(session))
    s = create_screen(client, h)
    answer(client, h, s["id"], {"phq9_1": 2, "bjmhs_8": True})
    give_consent(client, h, s["id"])
    client.get(f"/api/v1/screens/{s['id']}", headers=h)
    client.post(f"/api/v1/screens/{s['id']}/finalise", headers=h)
    entries = session.scalars(select(AuditEntry).where(AuditEntry.record_id == s["id"]).order_by(AuditEntry.id)).all()
    actions = [e.action for e in entries]
    for expected in ("screen.create", "screen.answers.update", "screen.consent.set", "screen.read", "screen.finalise"):
        assert expected in actions
    update = next(e for e in entries if e.action == "screen.answers.update")
    assert update.detail == {"items": ["bjmhs_8", "phq9_1"]}  # ids, never values
    assert verify_chain(session).ok


def test_a_rejected_request_leaves_no_audit_entry(client: TestClient, session: Session) -> None:
    h = headers_for(client, make_user(session))
    s = create_screen(client, h)
    before = len(session.scalars(select(AuditEntry)).all())
    session.rollback()  # release SQLite's writer lock: every transaction begins IMMEDIATE
    r = client.patch(f"/api/v1/screens/{s['id']}/answers", json={"answers": {"phq9_1": 7}}, headers=h)
    assert r.status_code == 422
    # The load of the screen for the failed PATCH writes nothing: the whole unit of work rolled back.
    assert len(session.scalars(select(AuditEntry)).all()) == before
