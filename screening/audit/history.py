"""A screen's history for administrators: audit entries and answer changes, without clinical content."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from screening.audit.models import AuditEntry
from screening.audit.schemas import AnswerChange, AuditEntryRead, ScreenHistory
from screening.auth.models import User
from screening.errors import NotFound
from screening.screens.models import AnswerEvent, Screen


def screen_history(session: Session, screen_id: str) -> ScreenHistory:
    """A screen's audit entries and answer changes, oldest first; 404 only if the screen never left a trace.

    A purged screen keeps its audit entries (they hold ids, never personal data), so its history can
    still be read after the retention purge.
    """
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.record_type == "screen", AuditEntry.record_id == screen_id)
        .order_by(AuditEntry.id)
    ).all()
    exists = session.get(Screen, screen_id) is not None
    if not exists and not entries:
        raise NotFound(f"No screen with id {screen_id}.")
    events = session.scalars(
        select(AnswerEvent).where(AnswerEvent.screen_id == screen_id).order_by(AnswerEvent.id)
    ).all()
    ids = {e.changed_by_id for e in events}
    names = dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).tuples().all()) if ids else {}
    return ScreenHistory(
        screen_id=screen_id,
        exists=exists,
        entries=[AuditEntryRead(id=e.id, at=e.at, actor=e.actor, role=e.role, action=e.action,
                                source_ip=e.source_ip, detail=e.detail) for e in entries],
        answer_changes=[AnswerChange(item_id=e.item_id, revision=e.revision, cleared=e.value is None,
                                     changed_by=names.get(e.changed_by_id, "unknown"), changed_at=e.changed_at)
                        for e in events],
    )
