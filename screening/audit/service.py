"""The audit trail: entries are queued on the session and written, hash-chained, just before commit.

Queuing lets every service call `record()` wherever it touches personal data, while the chain lock is
held only for the final moments of the transaction. The entry commits in the same transaction as
the change it records, or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, insert, select, text
from sqlalchemy.orm import Session

from screening.audit.models import AuditEntry
from screening.db import utcnow

GENESIS = "0" * 64
_PENDING = "audit_pending"
# Any constant: serialises appends to the chain across PostgreSQL connections (SQLite's BEGIN
# IMMEDIATE already serialises writers).
_CHAIN_LOCK_KEY = 7_305_001


@dataclass(frozen=True)
class Actor:
    id: int | None
    username: str
    role: str
    source_ip: str | None = None


SYSTEM = Actor(id=None, username="system", role="system")


def record(
    session: Session,
    actor: Actor,
    action: str,
    record_type: str,
    record_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Queue an audit entry to be written with this session's transaction."""
    session.info.setdefault(_PENDING, []).append((actor, action, record_type, record_id, detail or {}, utcnow()))


def _fmt(at: datetime) -> str:
    return at.isoformat(timespec="microseconds")


_HASHED = ("at", "actor_id", "actor", "role", "action", "record_type", "record_id", "source_ip", "detail")


def _chain_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    payload = {k: fields[k] for k in _HASHED} | {"at": _fmt(fields["at"]), "prev": prev_hash}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def entry_hash(prev_hash: str, e: AuditEntry) -> str:
    return _chain_hash(prev_hash, {k: getattr(e, k) for k in _HASHED})


# Built once: every request appends to the chain, and building a statement costs more than running it.
_LAST_HASH = select(AuditEntry.__table__.c.hash).order_by(AuditEntry.__table__.c.id.desc()).limit(1)
_APPEND = insert(AuditEntry.__table__)


def _write_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK_KEY})
    prev = session.execute(_LAST_HASH).scalar() or GENESIS
    rows = []
    for actor, action, record_type, record_id, detail, at in pending:
        row = {"at": at, "actor_id": actor.id, "actor": actor.username, "role": actor.role, "action": action,
               "record_type": record_type, "record_id": record_id, "source_ip": actor.source_ip, "detail": detail,
               "prev_hash": prev}
        row["hash"] = prev = _chain_hash(prev, row)
        rows.append(row)
    # One Core INSERT (executemany for several), not an ORM object per entry: every request writes one.
    session.execute(_APPEND, rows)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    _write_pending(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str | None = None


def _entries(session: Session, batch: int = 5000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.id > last).order_by(AuditEntry.id).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id
        session.expunge_all()


def verify_chain(session: Session) -> VerifyResult:
    """Walk the chain in id order; an edited, deleted or reordered entry breaks a link."""
    prev = GENESIS
    n = 0
    for e in _entries(session):
        n += 1
        if e.prev_hash != prev:
            return VerifyResult(False, n, e.id, "does not link to the entry before it (an entry was deleted or moved)")
        if entry_hash(prev, e) != e.hash:
            return VerifyResult(False, n, e.id, "its contents do not match its hash (the entry was edited)")
        prev = e.hash
    return VerifyResult(True, n)
