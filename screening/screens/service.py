"""Screens: creation with idempotency, answers merged item by item, consent, finalisation.

Services flush, never commit: the request's unit of work commits the change and its audit entry
together. Every write locks the screen row first, so concurrent PATCHes to one screen are applied one
after another (none lost) and a PATCH can never slip past a finalise.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, case, event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from screening.audit import service as audit
from screening.auth.dependencies import Hot
from screening.auth.models import User
from screening.auth.policy import may_edit_screen
from screening.auth.schemas import Principal
from screening.db import utcnow
from screening.errors import Conflict, FieldError, Forbidden, Invalid
from screening.instruments.registry import Registry
from screening.instruments.service import answer_errors, scores_and_progress
from screening.screens import linkage, store
from screening.screens.dependencies import check_screen
from screening.screens.models import Answer, AnswerEvent, Consent, Screen, ScreenStatus, Sex
from screening.screens.schemas import (
    AnswerHistoryEntry,
    ConsentPut,
    ConsentRead,
    Progress,
    ScreenCreate,
    ScreenPage,
    ScreenRead,
    ScreenSummary,
)
from screening.screens.store import ScreenRow, StoredAnswer


def age_on(dob: date, day: date) -> int:
    return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))


def _fingerprint(data: ScreenCreate, person: str | None) -> str:
    # The raw person reference stays out of the fingerprint: an unkeyed hash of a short reference
    # could be reversed by trying every value.
    blob = json.dumps(data.model_dump(mode="json", exclude={"person_ref"}) | {"person": person}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _find_by_key(session: Session, user_id: int, key: str) -> Screen | None:
    return session.scalar(select(Screen).where(Screen.created_by_id == user_id, Screen.idempotency_key == key))


def _replay(existing: Screen, fingerprint: str) -> Screen:
    if existing.idempotency_fingerprint != fingerprint:
        raise Conflict("This Idempotency-Key was already used for a different request.")
    return existing


def create_screen(
    session: Session,
    user: Principal,
    data: ScreenCreate,
    idempotency_key: str | None,
    person_key: str,
    previous_person_keys: Sequence[str] = (),
) -> tuple[Screen, bool]:
    """Open a draft screen; with an Idempotency-Key, a retry returns the first screen. (screen, created)."""
    suite = data.custody_suite or (user.custody_suites[0] if user.custody_suites else None)
    if suite is None or suite not in user.custody_suites:
        raise Forbidden("You can only open screens for your own custody suites.",
                        errors=[FieldError(field="custody_suite", message="not one of your custody suites")])
    person, rekeyed = (
        linkage.link_person(session, person_key, previous_person_keys, data.person_ref) if data.person_ref else (None, 0)
    )
    fingerprint = _fingerprint(data, person)
    if idempotency_key:
        existing = _find_by_key(session, user.id, idempotency_key)
        if existing is not None:
            return _replay(existing, fingerprint), False
    now = utcnow()
    screen = Screen(
        id=str(uuid.uuid4()),
        custody_record=data.custody_record,
        date_of_birth=data.date_of_birth,
        sex=data.sex.value,
        ethnicity=data.ethnicity,
        custody_suite=suite,
        person_hash=person,
        status=ScreenStatus.draft.value,
        created_by_id=user.id,
        created_at=now,
        updated_at=now,
        idempotency_key=idempotency_key,
        idempotency_fingerprint=fingerprint if idempotency_key else None,
    )
    try:
        # A savepoint, so that losing a race on the same key leaves the outer transaction usable.
        with session.begin_nested():
            session.add(screen)
    except IntegrityError:
        if not idempotency_key:
            raise
        existing = _find_by_key(session, user.id, idempotency_key)
        if existing is None:
            raise
        return _replay(existing, fingerprint), False
    audit.record(session, user.actor, "screen.create", "screen", screen.id)
    if rekeyed:
        # Key rotation touched other screens' rows: say so in the trail (a count, never the hash).
        audit.record(session, user.actor, "screen.person.rekey", "screen", screen.id, {"screens": rekeyed})
    return screen, True


def lock(session: Session, screen: Screen) -> Screen:
    """Re-read the screen holding its row lock until commit (PostgreSQL; SQLite's writer lock is already held)."""
    if session.get_bind().dialect.name == "sqlite":
        # Every SQLite transaction starts with BEGIN IMMEDIATE (screening.db), and the screen was read
        # inside this one: it is current, and no other writer can change it before commit.
        return screen
    locked = session.scalars(
        select(Screen).where(Screen.id == screen.id).with_for_update().execution_options(populate_existing=True)
    ).one()
    return locked


def ensure_editable(screen: Screen | ScreenRow) -> None:
    if not may_edit_screen(screen.status):
        raise Conflict("This screen is final and can no longer be changed.")
    if screen.status == ScreenStatus.declined:
        raise Conflict("The person declined screening; record their consent again before adding answers.")


_MERGED = "screens.current_answers"  # (screen id, its answers) as this transaction last read or wrote them


# The statements a tablet's every tap runs, built once with bound parameters: building a statement
# costs more than running it. Table-level (Core) statements: no ORM objects are wanted for these rows.
_answers = Answer.__table__
_ANSWERS = select(_answers.c.item_id, _answers.c.value, _answers.c.revision).where(
    _answers.c.screen_id == bindparam("screen_id"))
_consents, _users = Consent.__table__, User.__table__
_CONSENT = (
    select(_consents.c.screening, _consents.c.share_with_health, _consents.c.share_with_court, _consents.c.capacity,
           _consents.c.recorded_at, _users.c.username)
    .select_from(_consents.outerjoin(_users, _users.c.id == _consents.c.recorded_by_id))
    .where(_consents.c.screen_id == bindparam("screen_id"))
    .order_by(_consents.c.id.desc())
    .limit(1)
)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget_answers(session: Session) -> None:
    session.info.pop(_MERGED, None)


def current_answers(session: Session, screen_id: str) -> dict[str, StoredAnswer]:
    """The screen's answers by item id, read as plain rows (no ORM objects: a screen has ~60 of them)."""
    known = session.info.get(_MERGED)
    if known is not None and known[0] == screen_id:
        # Read (or just written by patch_answers) earlier in this transaction: answers change only through
        # patch_answers, which updates this copy, so a second read - the routes read them two or three
        # times, for the model, the rules and repeat contacts - costs no query. Forgotten at commit.
        return dict(known[1])
    rows = session.execute(_ANSWERS, {"screen_id": screen_id})
    stored = {item_id: StoredAnswer(value, revision) for item_id, value, revision in rows}
    session.info[_MERGED] = (screen_id, stored)
    return dict(stored)


@dataclass
class AnswerChanges:
    """What a PATCH changes: rows to add, change and clear, one history event per change, the new answers."""

    stored: dict[str, StoredAnswer]
    added: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    cleared: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def items(self) -> list[str]:
        return sorted(e["item_id"] for e in self.events)


def validate_answers(registry: Registry, answers: dict[str, Any]) -> None:
    """All-or-nothing: one bad value rejects the whole request, naming every offending item."""
    errors = answer_errors(registry, answers, allow_null=True)
    if errors:
        raise Invalid("Invalid answers: " + ", ".join(e.field for e in errors), errors=errors)


def _same(stored: Any, sent: Any) -> bool:
    # bool is an int in Python: compare types too, so True never equals 1.
    return bool(stored == sent) and type(stored) is type(sent)


def merge_answers(
    stored: dict[str, StoredAnswer],
    answers: dict[str, Any],
    expected_revisions: dict[str, int] | None,
    *,
    screen_id: str,
    user_id: int,
    now: datetime,
) -> AnswerChanges:
    """Merge a partial set of (validated) answers into the stored ones; 409 naming any answer changed elsewhere.

    An answer whose expected revision is stale but whose stored value is already the one sent is not a
    conflict: nothing would be overwritten. That is a save sent again because its response never reached
    the tablet (its queue resends against the revision it last saw), and is answered as the saved state."""
    if expected_revisions:
        stale = [
            FieldError(field=f"answers.{item_id}", message=f"changed on the server (now revision {stored[item_id].revision})")
            for item_id, rev in expected_revisions.items()
            if item_id in answers and item_id in stored and stored[item_id].revision != rev
            and not _same(stored[item_id].value, answers[item_id])
        ]
        if stale:
            raise Conflict("Some answers were changed elsewhere since this device last saw them.", errors=stale)
    out = AnswerChanges(stored=dict(stored))
    for item_id, value in answers.items():
        row = out.stored.get(item_id)
        if value is None:
            if row is None:
                continue
            out.cleared.append({"b_screen_id": screen_id, "b_item_id": item_id})
            del out.stored[item_id]
            revision = row.revision + 1
        else:
            if row is not None and _same(row.value, value):
                continue
            revision = 1 if row is None else row.revision + 1
            if row is None:
                out.added.append({"screen_id": screen_id, "item_id": item_id, "value": value, "revision": revision,
                                  "updated_by_id": user_id, "updated_at": now})
            else:
                out.changed.append({"b_screen_id": screen_id, "b_item_id": item_id, "value": value,
                                    "revision": revision, "updated_by_id": user_id, "updated_at": now})
            out.stored[item_id] = StoredAnswer(value, revision)
        out.events.append({"screen_id": screen_id, "item_id": item_id, "value": value, "revision": revision,
                           "changed_by_id": user_id, "changed_at": now})
    return out


def patch_answers(
    session: Session,
    user: Principal,
    registry: Registry,
    screen: Screen,
    answers: dict[str, Any],
    expected_revisions: dict[str, int] | None = None,
) -> Screen:
    """Merge a partial set of answers; all-or-nothing: one bad value rejects the whole request."""
    validate_answers(registry, answers)
    screen = lock(session, screen)
    ensure_editable(screen)
    now = utcnow()
    changes = merge_answers(current_answers(session, screen.id), answers, expected_revisions,
                            screen_id=screen.id, user_id=user.id, now=now)
    # Set-wise statements rather than an ORM object per answer (the hot route's own: screens.store).
    for stmt, rows in store.answer_writes(changes.added, changes.changed, changes.cleared, changes.events):
        session.execute(stmt, rows)
    if changes.events:
        screen.updated_at = now
        audit.record(session, user.actor, "screen.answers.update", "screen", screen.id, {"items": changes.items})
    session.flush()
    session.info[_MERGED] = (screen.id, changes.stored)
    return screen


# Built once: a statement built per call cost as much again as running it (~50 us here).
_LATEST_CONSENT = select(Consent).where(Consent.screen_id == bindparam("screen_id")).order_by(Consent.id.desc()).limit(1)


def latest_consent(session: Session, screen_id: str) -> Consent | None:
    return session.scalar(_LATEST_CONSENT, {"screen_id": screen_id})


def set_consent(session: Session, user: Principal, screen: Screen, data: ConsentPut) -> Screen:
    """Record consent and capacity; declining screening closes the screen as `declined`."""
    screen = lock(session, screen)
    if screen.status == ScreenStatus.final:
        raise Conflict("This screen is final and can no longer be changed.")
    session.add(Consent(screen_id=screen.id, screening=data.screening, share_with_health=data.share_with_health,
                        share_with_court=data.share_with_court, capacity=data.capacity.value,
                        recorded_by_id=user.id, recorded_at=utcnow()))
    screen.status = ScreenStatus.draft.value if data.screening else ScreenStatus.declined.value
    screen.updated_at = utcnow()
    audit.record(session, user.actor, "screen.consent.set", "screen", screen.id,
                 {"screening": data.screening, "share_with_health": data.share_with_health,
                  "share_with_court": data.share_with_court, "capacity": data.capacity.value})
    session.flush()
    return screen


def finalise(session: Session, user: Principal, screen: Screen) -> Screen:
    """Close the screen; a final screen is read-only."""
    screen = lock(session, screen)
    ensure_editable(screen)
    consent = latest_consent(session, screen.id)
    if consent is None:
        raise Conflict("Record the person's consent before finalising the screen.")
    now = utcnow()
    screen.status, screen.finalised_at, screen.finalised_by_id, screen.updated_at = (
        ScreenStatus.final.value, now, user.id, now)
    audit.record(session, user.actor, "screen.finalise", "screen", screen.id)
    session.flush()
    return screen


def _usernames(session: Session, ids: Iterable[int | None], me: Principal | None = None) -> dict[int, str]:
    """Usernames by id; the signed-in user (`me`), usually the one named, costs no query."""
    wanted = {i for i in ids if i is not None}
    names = {}
    if me is not None and me.id in wanted:
        names[me.id] = me.username
        wanted.discard(me.id)
    if wanted:
        names |= dict(session.execute(select(User.id, User.username).where(User.id.in_(wanted))).tuples().all())
    return names


def _summary_fields(screen: Screen | ScreenRow, names: dict[int, str]) -> dict[str, Any]:
    """What a list shows of a screen; the full read shows it too (`screen_read`)."""
    return {
        "id": screen.id, "custody_record": screen.custody_record, "custody_suite": screen.custody_suite,
        "status": ScreenStatus(screen.status), "age": age_on(screen.date_of_birth, screen.created_at.date()),
        "sex": Sex(screen.sex), "created_at": screen.created_at, "updated_at": screen.updated_at,
        "created_by": names.get(screen.created_by_id, "unknown"),
    }


def summary(screen: Screen | ScreenRow, names: dict[int, str]) -> ScreenSummary:
    return ScreenSummary(**_summary_fields(screen, names))


def answer_values(session: Session, screen_id: str) -> dict[str, Any]:
    return {item_id: a.value for item_id, a in current_answers(session, screen_id).items()}


def _consent_read(session: Session, screen_id: str) -> ConsentRead | None:
    """The consent in force, with who recorded it (one query)."""
    row = session.execute(_CONSENT, {"screen_id": screen_id}).first()
    if row is None:
        return None
    return ConsentRead(
        screening=row.screening, share_with_health=row.share_with_health, share_with_court=row.share_with_court,
        capacity=row.capacity, recorded_by=row.username or "unknown", recorded_at=row.recorded_at,
    )


def screen_read(
    registry: Registry,
    screen: Screen | ScreenRow,
    stored: dict[str, StoredAnswer],
    consent: ConsentRead | None,
    names: dict[int, str],
    previous_contacts: int,
) -> ScreenRead:
    """The screen as the API shows it, from its row, answers, consent in force and the names of who opened
    and closed it. Scores and progress come from the instruments' memo (`scoring.InstrumentMemo`)."""
    values = {k: a.value for k, a in stored.items()}
    scores, counts = scores_and_progress(registry, values)
    return ScreenRead.model_construct(
        **_summary_fields(screen, names),
        date_of_birth=screen.date_of_birth,
        ethnicity=screen.ethnicity,
        linked=screen.person_hash is not None,
        previous_contacts=previous_contacts,
        finalised_at=screen.finalised_at,
        finalised_by=names.get(screen.finalised_by_id) if screen.finalised_by_id else None,
        consent=consent,
        answers=values,
        revisions={k: a.revision for k, a in stored.items()},
        scores=scores,
        progress=Progress.model_construct(answered=counts["answered"], expected=counts["expected"]),
    )


def read_screen(session: Session, registry: Registry, screen: Screen, me: Principal | None = None) -> ScreenRead:
    """The screen as the API shows it; `me`, the signed-in user, saves a query for their own name."""
    return screen_read(
        registry, screen, current_answers(session, screen.id), _consent_read(session, screen.id),
        _usernames(session, [screen.created_by_id, screen.finalised_by_id], me),
        linkage.previous_contacts(session, screen),
    )


def list_screens(
    session: Session,
    user: Principal,
    *,
    status: ScreenStatus | None,
    suite: str | None,
    created_on: date | None,
    limit: int,
    offset: int,
) -> ScreenPage:
    """The user's suites' screens, drafts first, newest first."""
    suites = [s for s in user.custody_suites if suite is None or s == suite]
    where: list[ColumnElement[bool]] = [Screen.custody_suite.in_(suites)]
    if status is not None:
        where.append(Screen.status == status.value)
    if created_on is not None:
        where.append(func.date(Screen.created_at) == created_on.isoformat()
                     if session.get_bind().dialect.name == "sqlite" else func.date(Screen.created_at) == created_on)
    total = session.scalar(select(func.count()).select_from(Screen).where(*where)) or 0
    drafts_first = case((Screen.status == ScreenStatus.draft.value, 0), else_=1)
    rows = session.scalars(
        select(Screen).where(*where).order_by(drafts_first, Screen.created_at.desc(), Screen.id).limit(limit).offset(offset)
    ).all()
    names = _usernames(session, [r.created_by_id for r in rows])
    audit.record(session, user.actor, "screen.list", "screen", None, {"count": len(rows)})
    return ScreenPage(items=[summary(r, names) for r in rows], total=total, limit=limit, offset=offset)


def answer_history(session: Session, screen_id: str) -> list[AnswerHistoryEntry]:
    events = session.scalars(select(AnswerEvent).where(AnswerEvent.screen_id == screen_id).order_by(AnswerEvent.id)).all()
    names = _usernames(session, [e.changed_by_id for e in events])
    return [AnswerHistoryEntry(item_id=e.item_id, value=e.value, revision=e.revision,
                               changed_by=names.get(e.changed_by_id, "unknown"), changed_at=e.changed_at) for e in events]


# -- The tablet's hot routes, at driver level (screening.driver) --------------------------------------


async def read_screen_hot(hot: Hot, screen_id: str) -> bytes:
    """The screen, its answers, consent, scores and progress, as the response body; the read audited before
    it is shown."""
    loaded = await store.load(hot.db, hot.claims.user_id, screen_id)
    user = hot.principal(loaded.user)
    screen = check_screen(loaded.screen, screen_id, user)
    async with hot.db.append() as tx:
        audit.record_hot(tx, user.actor, "screen.read", "screen", screen.id)
    contacts = await store.previous_contacts(hot.db, screen)
    # The body is a pure function of the loaded row (and the count): built and serialised once per state.
    bodies = hot.db.memo("screens.read")
    key = (loaded.key, contacts)
    body: bytes | None = bodies.get(key)
    if body is None:
        read = screen_read(hot.registry, screen, loaded.answers, loaded.consent, loaded.names, contacts)
        body = bodies.put(key, ScreenRead.__pydantic_serializer__.to_json(read))
    return body


async def patch_answers_hot(
    hot: Hot, screen_id: str, answers: dict[str, Any], expected_revisions: dict[str, int] | None
) -> ScreenRead:
    """`patch_answers` at driver level: the screen locked, merged, its history and audit entry, one commit."""
    now = utcnow()
    async with hot.db.write() as tx:
        loaded = await store.load(hot.db, hot.claims.user_id, screen_id, tx)
        user = hot.principal(loaded.user)
        screen = check_screen(loaded.screen, screen_id, user)
        validate_answers(hot.registry, answers)
        ensure_editable(screen)
        changes = merge_answers(loaded.answers, answers, expected_revisions, screen_id=screen.id, user_id=user.id,
                                now=now)
        store.write_answers(tx, changes.added, changes.changed, changes.cleared, changes.events, screen.id, now)
        if changes.events:
            screen = screen._replace(updated_at=now)
            audit.record_hot(tx, user.actor, "screen.answers.update", "screen", screen.id, {"items": changes.items})
        store.keep(tx, replace(loaded, screen=screen, answers=changes.stored, key=None))
    return screen_read(hot.registry, screen, changes.stored, loaded.consent, loaded.names,
                       await store.previous_contacts(hot.db, screen))
