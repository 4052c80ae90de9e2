"""Which final screens a court user may see a report for: those whose consent shares with the court."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from screening.audit import service as audit
from screening.auth.models import User
from screening.auth.schemas import Principal
from screening.screens.models import Consent, Screen, ScreenStatus
from screening.web.reports.schemas import SharedReport, SharedReportPage


def shared_reports(session: Session, user: Principal, *, limit: int, offset: int) -> SharedReportPage:
    """Final screens whose consent in force shares with the court, newest first.

    Only the latest consent counts: a person who withdrew consent to share before finalising is not listed.
    Courts serve many custody suites, so a court account is not tied to one (as the court report's own access
    rule says); an account given custody suites sees only theirs, so a site can narrow a court's list.
    """
    latest = (
        select(Consent.screen_id, func.max(Consent.id).label("consent_id")).group_by(Consent.screen_id).subquery()
    )
    finaliser = aliased(User)
    where = [Screen.status == ScreenStatus.final.value, Consent.share_with_court.is_(True)]
    if user.custody_suites:
        where.append(Screen.custody_suite.in_(list(user.custody_suites)))
    base = (
        select(Screen, finaliser.full_name)
        .join(latest, latest.c.screen_id == Screen.id)
        .join(Consent, Consent.id == latest.c.consent_id)
        .outerjoin(finaliser, finaliser.id == Screen.finalised_by_id)
        .where(*where)
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(base.order_by(Screen.finalised_at.desc(), Screen.id).limit(limit).offset(offset)).all()
    audit.record(session, user.actor, "court_report.list", "screen", None, {"count": len(rows)})
    items = [
        SharedReport(screen_id=s.id, custody_record=s.custody_record, custody_suite=s.custody_suite,
                     finalised_at=s.finalised_at, finalised_by=name or "unknown")
        for s, name in rows
    ]
    return SharedReportPage(items=items, total=total, limit=limit, offset=offset)
