"""A screen's rows for the tablet's hot routes, read and written at driver level (`screening.driver`).

One statement loads everything a read needs - the signed-in user's row (for revocation), the screen,
its answers, the consent in force and the names of who opened and closed it - so a read is one round
trip to PostgreSQL. The statements are Core, built from the same tables as the ORM and compiled once
per dialect; only the JSON aggregation differs between SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import JSON, Integer, Select, String, Table, Text, bindparam, delete, func, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.types import TypeEngine

from screening.auth.models import User
from screening.driver import HotDatabase, Keyed, WriteTx, insert_rows
from screening.screens.linkage import PREVIOUS_CONTACTS, earlier_params
from screening.screens.models import Answer, AnswerEvent, Capacity, Consent, Screen
from screening.screens.schemas import ConsentRead

_u, _s, _a, _c, _ev = (cast(Table, m.__table__) for m in (User, Screen, Answer, Consent, AnswerEvent))
_creator, _finaliser, _recorder = _u.alias("creator"), _u.alias("finaliser"), _u.alias("recorder")
SCREENS, USERS = _s, _u  # for columns a caller adds to the load (`load_statement`)


# The rows a load returns are named tuples: a PATCH builds them anew every time (it cannot use the memo), and a
# frozen dataclass cost six times as much to build (it sets each field through object.__setattr__).


class UserRow(NamedTuple):
    id: int
    username: str
    full_name: str
    role: str
    custody_suites: tuple[str, ...]
    active: bool
    token_version: int


class ScreenRow(NamedTuple):
    """The screen's columns, with the ORM model's attribute names (services read either)."""

    id: str
    custody_record: str
    date_of_birth: date
    sex: str
    ethnicity: str | None
    custody_suite: str
    status: str
    created_by_id: int
    created_at: datetime
    updated_at: datetime
    finalised_at: datetime | None
    finalised_by_id: int | None
    person_hash: str | None


class StoredAnswer(NamedTuple):
    """An answer as stored (a PATCH builds one per answer of the screen: parsing 50 took a quarter longer with a
    frozen dataclass)."""

    value: Any
    revision: int


@dataclass(frozen=True, slots=True)
class Loaded:
    """What one load returns; `screen` is None when there is no such screen (the user is always read).

    `key` is the row as the database returned it: what is derived from a load (a response body, say)
    can be memoised on it, and is right whenever the key matches, with nothing to invalidate.
    """

    user: UserRow | None
    screen: ScreenRow | None
    answers: dict[str, StoredAnswer]
    consent: ConsentRead | None
    names: dict[int, str]
    key: tuple[Any, ...] | None = None
    # The columns a caller's statement adds after the load's own (see `load_statement`), as the driver gave them.
    extra: tuple[Any, ...] = ()


def json_array(dialect: str, *cols: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.json_build_array(*cols) if dialect == "postgresql" else func.json_array(*cols)


def json_rows(dialect: str, *cols: ColumnElement[Any]) -> ColumnElement[Any]:
    """A JSON array of one array per row, [[col, ...], ...]: for no rows, null on PostgreSQL and [] on SQLite (parse
    it with `from_json`, then `or ()`)."""
    row = json_array(dialect, *cols)
    return as_text(dialect, func.json_agg(row) if dialect == "postgresql" else func.json_group_array(row))


def as_text(dialect: str, col: ColumnElement[Any]) -> ColumnElement[Any]:
    # JSON comes back as text on both databases (psycopg would parse it into unhashable lists): the raw
    # row is then a memo key, and is parsed once per distinct row.
    return sql_cast(col, Text) if dialect == "postgresql" else col


_USER_COLS = (_u.c.id, _u.c.username, _u.c.full_name, _u.c.role, _u.c.custody_suites, _u.c.active, _u.c.token_version)
_SCREEN_COLS = (_s.c.id, _s.c.custody_record, _s.c.date_of_birth, _s.c.sex, _s.c.ethnicity, _s.c.custody_suite,
                _s.c.status, _s.c.created_by_id, _s.c.created_at, _s.c.updated_at, _s.c.finalised_at,
                _s.c.finalised_by_id, _s.c.person_hash)


def _load(dialect: str, user_id: ColumnElement[Any], screen_id: ColumnElement[Any]) -> Select[Any]:
    """The load; a caller may add columns correlated to the screen (`SCREENS`), returned in `Loaded.extra`."""
    # SQLite keeps a JSON value as text and embeds it as a string here (json() would parse every value in SQL,
    # more than doubling the statement's cost); it is parsed in Python only when the row is new (see load).
    answers = select(json_rows(dialect, _a.c.item_id, _a.c.value, _a.c.revision)).where(
        _a.c.screen_id == _s.c.id).scalar_subquery()
    consent = (
        select(as_text(dialect, json_array(dialect, _c.c.screening, _c.c.share_with_health, _c.c.share_with_court,
                                           _c.c.capacity, _c.c.recorded_at, _recorder.c.username)))
        .select_from(_c.outerjoin(_recorder, _recorder.c.id == _c.c.recorded_by_id))
        .where(_c.c.screen_id == _s.c.id)
        .order_by(_c.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    creator = select(_creator.c.username).where(_creator.c.id == _s.c.created_by_id).scalar_subquery()
    finaliser = select(_finaliser.c.username).where(_finaliser.c.id == _s.c.finalised_by_id).scalar_subquery()
    user_cols = [as_text(dialect, c) if c is _u.c.custody_suites else c for c in _USER_COLS]
    return (
        select(*user_cols, *_SCREEN_COLS, answers.label("answers"), consent.label("consent"), creator, finaliser)
        .select_from(_u.outerjoin(_s, _s.c.id == screen_id))
        .where(_u.c.id == user_id)
    )


# By the user's id and the screen's: on PostgreSQL the loads of the moment go as one statement (`Keyed`).
LOAD_KEYS: tuple[tuple[str, TypeEngine[Any]], ...] = (("user_id", Integer()), ("screen_id", String()))
load_statement = Keyed(_load, LOAD_KEYS)


# A statement of its own, before the load: in READ COMMITTED the load's snapshot then starts after the lock
# is granted, so it sees whatever the previous holder committed.
_LOCK = select(_s.c.id).where(_s.c.id == bindparam("screen_id", type_=String)).with_for_update()

# A PATCH's writes, set-wise; the ORM's patch_answers (screens.service) runs the same statements.
ADD_ANSWERS = insert_rows(_a, ("screen_id", "item_id", "value", "revision", "updated_by_id", "updated_at"))
CHANGE_ANSWERS = (
    update(_a)
    .where(_a.c.screen_id == bindparam("b_screen_id"), _a.c.item_id == bindparam("b_item_id"))
    .values(value=bindparam("value", type_=JSON), revision=bindparam("revision"),
            updated_by_id=bindparam("updated_by_id"), updated_at=bindparam("updated_at", type_=_a.c.updated_at.type))
)
CLEAR_ANSWERS = delete(_a).where(_a.c.screen_id == bindparam("b_screen_id"), _a.c.item_id == bindparam("b_item_id"))
ADD_EVENTS = insert_rows(_ev, ("screen_id", "item_id", "value", "revision", "changed_by_id", "changed_at"))
_TOUCH = update(_s).where(_s.c.id == bindparam("b_screen_id")).values(
    updated_at=bindparam("updated_at", type_=_s.c.updated_at.type))


def when(value: Any) -> datetime:
    at = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _parse(row: tuple[Any, ...], key: tuple[Any, ...], dialect: str) -> Loaded:
    nu, ns = len(_USER_COLS), len(_SCREEN_COLS)
    u, s = row[:nu], row[nu:nu + ns]
    answers_json, consent_json, creator, finaliser = row[nu + ns:nu + ns + 4]
    extra = row[nu + ns + 4:]
    user = None if u[0] is None else UserRow(u[0], u[1], u[2], u[3], tuple(from_json(u[4]) or ()), bool(u[5]), u[6])
    if s[0] is None:
        return Loaded(user, None, {}, None, {}, key, extra)
    screen = ScreenRow(*s)
    rows = from_json(answers_json) or ()
    values = json_values(dialect, [v for _, v, _ in rows])
    answers = {item_id: StoredAnswer(value, revision) for (item_id, _, revision), value in zip(rows, values, strict=True)}
    consent = None
    if consent_json is not None:
        screening, health, court, capacity, recorded_at, recorded_by = from_json(consent_json)
        consent = ConsentRead.model_construct(
            screening=bool(screening), share_with_health=bool(health), share_with_court=bool(court),
            capacity=Capacity(capacity), recorded_by=recorded_by or "unknown", recorded_at=when(recorded_at))
    names = {screen.created_by_id: creator} if creator is not None else {}
    if screen.finalised_by_id is not None and finaliser is not None:
        names[screen.finalised_by_id] = finaliser
    return Loaded(user, screen, answers, consent, names, key, extra)


def json_values(dialect: str, values: list[Any]) -> list[Any]:
    """JSON column values as a JSON aggregate (`json_rows`) returned them, parsed. On SQLite each is the column's
    JSON text, except that SQLite's numeric affinity has already made a number of "2" (repr writes a float back
    exactly). Joined and parsed at once: a PATCH parses every answer, and one json.loads for the lot cost half
    what one per value did. psycopg has parsed them already."""
    if dialect != "sqlite":
        return values
    return cast(list[Any], json.loads("[" + ",".join(_json_text(v) for v in values) + "]"))


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else "null" if value is None else repr(value)


def from_json(value: Any) -> Any:
    # SQLite returns the aggregates as text; psycopg parses json values itself.
    return json.loads(value) if isinstance(value, str) else value


# In WriteTx.shared: screen id -> the Loaded that the last write to it on this connection left (see `keep`).
_KEPT = "screens.kept"
# Screens kept per writer connection: the tablets' open screens, a few to ~20 KB each (as `HotDatabase.memo`).
KEPT_SCREENS = 256


async def load(hot: HotDatabase, user_id: int, screen_id: str, tx: WriteTx | None = None, *,
               statement: Keyed = load_statement) -> Loaded:
    """The user, the screen, its answers, consent and names; in `tx`, after locking the screen's row, or as a
    write on this connection left them (`keep`) where nothing else has been committed since.
    `statement`: `load_statement`, or a `Keyed` read built on it with columns added (`routes.hot`)."""
    params = {"user_id": user_id, "screen_id": screen_id}
    if tx is None:
        row = await hot.read_one(statement, params, raw=True)
    else:
        kept: dict[str, Loaded] | None = tx.shared.get(_KEPT)
        if kept is not None and statement is load_statement:
            was = kept.get(screen_id)
            if was is not None and was.user is not None and was.user.id == user_id:
                return was
        if tx.dialect == "postgresql":
            tx.add(_LOCK, {"screen_id": screen_id})  # SQLite: BEGIN IMMEDIATE already excludes other writers
        rows = await tx.fetch(statement, params, raw=True)
        row = rows[0] if rows else None
    if row is None:
        return Loaded(None, None, {}, None, {})
    if tx is not None:
        # Read to be changed: the row will not be seen again, so it is not worth a place in the memo.
        return _parse(hot.statements[statement].row(row), row, hot.statements.name)
    memo = hot.memo("screens.load")  # rows of different statements differ in length: their keys never meet
    loaded: Loaded | None = memo.get(row)
    if loaded is None:
        loaded = memo.put(row, _parse(hot.statements[statement].row(row), row, hot.statements.name))
    return loaded


def keep(tx: WriteTx, loaded: Loaded) -> None:
    """Keep `loaded`, what a write in `tx` has left of its screen, for the next load of it in a write on this
    connection. WriteTx.shared keeps it only while no other connection commits (on SQLite's writer; nothing is
    kept between PostgreSQL's units), and a unit that fails, or a transaction that does not commit, drops it:
    so a kept screen is what the database holds. Every hot write to a screen's load's rows keeps its result
    (`patch_answers_hot` is the only one); any other write to them is another connection's."""
    if tx.dialect != "sqlite" or loaded.screen is None:
        return
    # A new dict each time: a failed unit restores WriteTx.shared one level deep.
    kept = dict(tx.shared.get(_KEPT) or {})
    kept.pop(loaded.screen.id, None)
    kept[loaded.screen.id] = loaded
    if len(kept) > KEPT_SCREENS:
        del kept[next(iter(kept))]
    tx.shared[_KEPT] = kept


async def previous_contacts(hot: HotDatabase, screen: ScreenRow) -> int:
    """Earlier screens of the same person in the 12 months before this one (0 when not linked)."""
    if not screen.person_hash:
        return 0
    row = await hot.read_one(PREVIOUS_CONTACTS, earlier_params(screen))
    return int(row[0]) if row else 0


def answer_writes(added: list[dict[str, Any]], changed: list[dict[str, Any]], cleared: list[dict[str, Any]],
                  events: list[dict[str, Any]]) -> list[tuple[UpdateBase, list[dict[str, Any]]]]:
    """A PATCH's statements with their rows, in order, leaving out those with none."""
    writes = ((CLEAR_ANSWERS, cleared), (ADD_ANSWERS, added), (CHANGE_ANSWERS, changed), (ADD_EVENTS, events))
    return [(stmt, rows) for stmt, rows in writes if rows]


def write_answers(tx: WriteTx, added: list[dict[str, Any]], changed: list[dict[str, Any]], cleared: list[dict[str, Any]],
                  events: list[dict[str, Any]], screen_id: str, now: datetime) -> None:
    """Queue the answer changes, their history rows and the screen's new updated_at."""
    for stmt, rows in answer_writes(added, changed, cleared, events):
        tx.add(stmt, rows)
    if events:
        tx.add(_TOUCH, {"b_screen_id": screen_id, "updated_at": now})
