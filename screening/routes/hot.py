"""The recommendations an assessment carries (`GET /screens/{id}/assessment`), at driver level.

The same rules, decisions and local services as `GET /screens/{id}/recommendations` (`routes.service`, through
the ORM), and the same answer: the test suite compares the two. They are read with the assessment's one load -
the route decisions are one more column of it (`load_statement`) - and, for a linked screen only, one more
statement for the earlier contacts and their answers (the repeat-contact facts the rules read). The body is a
pure function of what was read, under the rules, instruments and model in force, so it is built and serialised
once per state.
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import TypeAdapter
from sqlalchemy import Select, Table, select
from sqlalchemy.sql import ColumnElement

from screening.auth.dependencies import Hot
from screening.contacts.needs import need_domains
from screening.contacts.service import counts_needs, recorded_domains
from screening.driver import Keyed, Memo
from screening.memos import kept_with
from screening.model.service import ModelBundle
from screening.routes.dependencies import needs_of
from screening.routes.models import Decision, RouteDecision
from screening.routes.rulebook import Rulebook
from screening.routes.schemas import DecisionRead, RecommendationRead
from screening.routes.service import PROPOSALS_MEMO_SIZE, facts_of, proposed_routes, recommendation_reads
from screening.screens import store
from screening.screens.linkage import EARLIER_LINKED, earlier_params
from screening.screens.models import Answer
from screening.screens.service import age_on

_rd, _a = cast(Table, RouteDecision.__table__), cast(Table, Answer.__table__)
_decider = store.USERS.alias("decider")
_READS: TypeAdapter[list[RecommendationRead]] = TypeAdapter(list[RecommendationRead])


def _load(dialect: str, **keys: ColumnElement[Any]) -> Select[Any]:
    """`store.load_statement` with the screen's route decisions, each with who made it, in one more column."""
    decisions = (
        select(store.json_rows(dialect, _rd.c.id, _rd.c.route, _rd.c.decision, _rd.c.reason_code, _rd.c.note,
                               _rd.c.decided_at, _decider.c.username))
        .select_from(_rd.outerjoin(_decider, _decider.c.id == _rd.c.decided_by_id))
        .where(_rd.c.screen_id == store.SCREENS.c.id)
        .scalar_subquery()
    )
    return store.load_statement.build(dialect, **keys).add_columns(decisions.label("route_decisions"))


load_statement = Keyed(_load, store.LOAD_KEYS)


def _earlier(dialect: str) -> Select[Any]:
    """Earlier contacts of a linked screen in the repeat-contact window, each with its status and answers."""
    s = store.SCREENS
    answers = select(store.json_rows(dialect, _a.c.item_id, _a.c.value)).where(_a.c.screen_id == s.c.id)
    return select(s.c.status, answers.scalar_subquery()).where(*EARLIER_LINKED)


def _decisions(dialect: str, column: Any) -> dict[str, DecisionRead]:
    """The decision in force per route: the latest (decisions are appended, never changed)."""
    rows = sorted(store.from_json(column) or (), key=lambda r: r[0])
    return {route: DecisionRead(decision=Decision(decision), reason_code=reason, note=note,
                                decided_by=by or "unknown", decided_at=store.when(at))
            for _, route, decision, reason, note, at, by in rows}


def _recorded(hot: Hot, screen: store.ScreenRow, values: dict[str, Any], earlier: list[tuple[Any, ...]],
              dialect: str) -> list[str]:
    """Need domains recorded across this contact and the earlier ones, as `contacts.service.repeat_contact_facts`
    finds them through the ORM; a contact that does not count (`counts_needs`) is not parsed or scored."""
    contacts = [need_domains(hot.registry, values)] if counts_needs(screen.status) else []
    for status, answers_json in earlier:
        if counts_needs(status):
            rows = store.from_json(answers_json) or ()
            found = store.json_values(dialect, [v for _, v in rows])
            contacts.append(need_domains(hot.registry, {item: v for (item, _), v in zip(rows, found, strict=True)}))
    return recorded_domains(hot.registry, contacts)


async def recommendations(hot: Hot, book: Rulebook, bundle: ModelBundle, loaded: store.Loaded,
                          screen: store.ScreenRow) -> tuple[bytes, int]:
    """The recommendations as a JSON array, and how many the rules proposed; `loaded` is from `load_statement`."""
    dialect = hot.db.statements.name
    earlier: list[tuple[Any, ...]] = []
    if screen.person_hash:
        earlier = await hot.db.read_all(_earlier, earlier_params(screen), raw=True)
    bodies = kept_with(book.derived, ("recommendations_body", hot.registry), lambda: Memo(PROPOSALS_MEMO_SIZE))
    # The row as loaded holds the screen, its answers, consent and decisions; the user's row is in it too, which
    # only keeps one nurse's entries apart from another's.
    key = (loaded.key, tuple(earlier), bundle.sha256)
    found: tuple[bytes, int] | None = bodies.get(key)
    if found is not None:
        return found
    values = {item: a.value for item, a in loaded.answers.items()}
    age = age_on(screen.date_of_birth, screen.created_at.date())
    facts = facts_of(hot.registry, screen, values, loaded.consent, needs_of(bundle, hot.registry, values, age, screen.sex),
                     len(earlier) + 1, _recorded(hot, screen, values, earlier, dialect))
    proposals = proposed_routes(book, hot.registry, facts)
    reads = recommendation_reads(book, screen.custody_suite, proposals, _decisions(dialect, loaded.extra[0]))
    return cast(tuple[bytes, int], bodies.put(key, (_READS.dump_json(reads), len(proposals))))
