"""The audit trail: entries are queued on the session and written, hash-chained, just before commit.

Queuing lets every service call `record()` wherever it touches personal data, while the chain lock is
held only for the final moments of the transaction. The entry commits in the same transaction as
the change it records, or not at all. The tablet's hot routes queue theirs on a driver-level
transaction (`record_hot`, `screening.driver`), written by the same rules.

On SQLite, BEGIN IMMEDIATE already serialises writers, so the chain's last hash is read and the new
hash computed here. On PostgreSQL one call to the `audit_append` function (migration 0006) takes the
chain lock, reads the last hash and inserts, so the lock is held on the server only, never across a
round trip; it hashes the same canonical JSON, which `chain_parts` splits around the previous hash.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, Integer, String, Table, bindparam, event, exists, func, select
from sqlalchemy.orm import Session

from screening.audit.models import AuditEntry
from screening.db import UTCDateTime, utcnow
from screening.driver import Witness, WriteTx, insert_rows

GENESIS = "0" * 64
_PENDING = "audit_pending"
_LAST = "audit_last_hash"  # in WriteTx.shared: the hash of the last entry the transaction has appended


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


# ensure_ascii (the default): the text is ASCII, so its UTF-8 bytes are the same in Python and SQL. One encoder for
# every entry (json.dumps with options builds a new one per call); the same options, so the same text.
_encode_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode


def _canonical(fields: dict[str, Any], prev_hash: str) -> str:
    payload = {k: fields[k] for k in _HASHED} | {"at": _fmt(fields["at"]), "prev": prev_hash}
    return _encode_canonical(payload)


def _chain_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(fields, prev_hash).encode()).hexdigest()


# Stands in for the previous hash while the canonical JSON is split; random per process, so no detail
# value can contain it (and `chain_parts` checks that it occurs once).
_PREV_MARK = "prev-" + uuid.uuid4().hex


def chain_parts(fields: dict[str, Any]) -> tuple[str, str]:
    """The entry's canonical JSON before and after the previous hash: sha256(head + prev + tail) is its hash."""
    head, mark, tail = _canonical(fields, _PREV_MARK).partition(_PREV_MARK)
    if not mark or _PREV_MARK in tail:
        raise ValueError("the previous-hash marker must occur exactly once in an audit entry")
    return head, tail


def entry_hash(prev_hash: str, e: AuditEntry) -> str:
    return _chain_hash(prev_hash, {k: getattr(e, k) for k in _HASHED})


Pending = tuple[Actor, str, str, str | None, dict[str, Any], datetime]


def _fields(entry: Pending) -> dict[str, Any]:
    actor, action, record_type, record_id, detail, at = entry
    return {"at": at, "actor_id": actor.id, "actor": actor.username, "role": actor.role, "action": action,
            "record_type": record_type, "record_id": record_id, "source_ip": actor.source_ip, "detail": detail}


def _chained(prev: str, pending: list[Pending]) -> list[dict[str, Any]]:
    rows = []
    for entry in pending:
        row = _fields(entry) | {"prev_hash": prev}
        row["hash"] = prev = _chain_hash(prev, row)
        rows.append(row)
    return rows


def _appended(entry: Pending) -> dict[str, Any]:
    """Parameters of `audit_append` (PostgreSQL) for one entry."""
    fields = _fields(entry)
    fields["head"], fields["tail"] = chain_parts(fields)
    return fields


_t = cast(Table, AuditEntry.__table__)


# Built once: every request appends to the chain, and building a statement costs more than running it.
_LAST_HASH = select(_t.c.hash).order_by(_t.c.id.desc()).limit(1)
_APPEND = insert_rows(_t, ("at", "actor_id", "actor", "role", "action", "record_type", "record_id", "source_ip",
                           "detail", "prev_hash", "hash"))
_APPEND_FN = select(func.audit_append(
    bindparam("at", type_=UTCDateTime), bindparam("actor_id", type_=Integer),
    *(bindparam(k, type_=String) for k in ("actor", "role", "action", "record_type", "record_id", "source_ip")),
    bindparam("detail", type_=JSON), bindparam("head", type_=String), bindparam("tail", type_=String),
    type_=String,
))


# The lock `audit_append` takes (migration 0006): held by an append from its call to its transaction's end.
CHAIN_LOCK = 7305001
# Whether an entry is in the chain, read after taking the chain's lock, so that an append already under way has
# ended first (READ COMMITTED: the second statement's snapshot is taken after the lock is granted).
_LOCK_CHAIN = select(func.pg_advisory_xact_lock(CHAIN_LOCK))
_HAS_ENTRY = select(exists().where(
    _t.c.record_id == bindparam("record_id", type_=String), _t.c.action == bindparam("action", type_=String),
    _t.c.actor == bindparam("actor", type_=String), _t.c.at == bindparam("at", type_=UTCDateTime)))


def _witness(pending: list[Pending]) -> Witness | None:
    """How to tell whether the transaction appending `pending` committed: its first entry with a record id (the
    index to find it by) is in the chain or not. Its time is to the microsecond, and it names its actor and action."""
    for actor, action, _type, record_id, _detail, at in pending:
        if record_id is not None:
            return ((_LOCK_CHAIN, {}),
                    (_HAS_ENTRY, {"record_id": record_id, "action": action, "actor": actor.username, "at": at}))
    return None


def _write_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    if session.get_bind().dialect.name == "postgresql":
        for entry in pending:
            session.execute(_APPEND_FN, _appended(entry))
        return
    prev = session.execute(_LAST_HASH).scalar() or GENESIS
    # One Core INSERT (executemany for several), not an ORM object per entry: every request writes one.
    session.execute(_APPEND, _chained(prev, pending))


def record_hot(tx: WriteTx, actor: Actor, action: str, record_type: str, record_id: str | None = None,
               detail: dict[str, Any] | None = None) -> None:
    """`record`, on a hot route's driver-level transaction (written by `write_hot` before its commit)."""
    tx.info.setdefault(_PENDING, []).append((actor, action, record_type, record_id, detail or {}, utcnow()))


async def write_hot(tx: WriteTx) -> None:
    """The hot transactions' before-commit hook: chain and queue the pending entries."""
    pending = tx.info.pop(_PENDING, None)
    if not pending:
        return
    if tx.dialect == "postgresql":
        tx.add(_APPEND_FN, [_appended(entry) for entry in pending])
        tx.witness = _witness(pending)
        return
    # The chain's last hash: read once per transaction, then carried from unit to unit of a group commit (the
    # transaction holds the write lock, so no other writer appends meanwhile).
    prev = tx.shared.get(_LAST)
    if prev is None:
        last = await tx.fetch(_LAST_HASH, {})
        prev = last[0][0] if last else GENESIS
    rows = _chained(prev, pending)
    tx.add(_APPEND, rows)
    tx.shared[_LAST] = rows[-1]["hash"]


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
