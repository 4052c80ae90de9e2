"""Retention: personal data older than the retention period is deleted; monthly counts are kept.

What is deleted: screens and everything hanging off them (answers, answer events, consents, and the
other domains' rows, which reference screens with ON DELETE CASCADE). What is kept: a count of screens
per month, custody suite and status (`retained_statistics`), and the audit trail, whose entries hold
ids and counts but never personal data. The audit trail is append-only and is never purged: deleting
entries would break the hash chain that proves it is complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from screening.audit import service as audit
from screening.audit.service import Actor
from screening.auth import throttle
from screening.config import Settings
from screening.db import utcnow
from screening.retention.models import RetainedStatistic
from screening.screens.models import Screen

BATCH = 500


@dataclass(frozen=True)
class PurgeResult:
    screens: int
    dry_run: bool


def _month(screen: Screen) -> str:
    return screen.created_at.strftime("%Y-%m")


def _keep_counts(session: Session, screens: list[Screen]) -> None:
    counts: dict[tuple[str, str, str], int] = {}
    for s in screens:
        key = (_month(s), s.custody_suite, s.status)
        counts[key] = counts.get(key, 0) + 1
    for (month, suite, status), n in counts.items():
        row = session.scalar(select(RetainedStatistic).where(
            RetainedStatistic.month == month,
            RetainedStatistic.custody_suite == suite,
            RetainedStatistic.status == status,
        ))
        if row is None:
            session.add(RetainedStatistic(month=month, custody_suite=suite, status=status, screens=n))
        else:
            row.screens += n
    session.flush()


def purge(session: Session, settings: Settings, older_than_days: int, *, dry_run: bool = False,
          actor: Actor = audit.SYSTEM) -> PurgeResult:
    """Delete screens opened more than `older_than_days` days ago; counts survive, audited either way."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    old = Screen.created_at < cutoff
    if dry_run:
        n = session.scalar(select(func.count()).select_from(Screen).where(old)) or 0
    else:
        n = 0
        while True:
            batch = list(session.scalars(select(Screen).where(old).order_by(Screen.id).limit(BATCH)))
            if not batch:
                break
            _keep_counts(session, batch)
            ids = [s.id for s in batch]
            for screen_id in ids:
                audit.record(session, actor, "screen.purge", "screen", screen_id)
            session.expunge_all()
            # Core delete: the database's ON DELETE CASCADE removes answers, events, consents and the
            # rows other domains hang off a screen, whichever tables exist in this deployment.
            session.execute(delete(Screen).where(Screen.id.in_(ids)).execution_options(synchronize_session=False))
            n += len(ids)
        throttle.purge_old(session, settings)
    audit.record(session, actor, "retention.purge", "retention", None,
                 {"older_than_days": older_than_days, "screens": n, "dry_run": dry_run})
    session.flush()
    return PurgeResult(screens=n, dry_run=dry_run)
