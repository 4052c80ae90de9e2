"""Assessing a stored screen with the served model, and recording which model said what."""

from __future__ import annotations

import json
from functools import lru_cache, partial
from typing import Any, cast

from sqlalchemy import JSON, Insert, String, Table, Text, bindparam, exists, insert, select, type_coerce
from sqlalchemy import cast as sql_cast

from screening.audit import service as audit
from screening.auth.dependencies import Hot
from screening.db import utcnow
from screening.driver import Memo
from screening.errors import Unavailable
from screening.instruments.registry import Registry
from screening.instruments.service import complete_scores
from screening.memos import kept_with
from screening.model.models import Assessment
from screening.model.schemas import AssessmentRead, DomainAssessmentRead, ModelRef
from screening.model.service import MEMO_SIZE, ModelBundle
from screening.routes import hot as routes_hot
from screening.screens import store
from screening.screens.dependencies import check_screen
from screening.screens.service import age_on

_assessments = cast(Table, Assessment.__table__)


def _record(dialect: str) -> Insert:
    """The assessment's row, unless the screen's last record says the same (the same model and result): a tablet
    reads the assessment again and again between answer changes, and every showing is audited anyway, so a record
    per showing only repeated the last one. The result comes as JSON text, encoded once per view (`_view`) rather
    than by the column's JSON type on every read; stored as that type would store it (the same `json.dumps` text on
    SQLite, cast to json on PostgreSQL, which keeps the text as given), so the last record's compares as text."""
    a = _assessments
    postgres = dialect == "postgresql"
    screen_id, result = bindparam("screen_id", type_=a.c.screen_id.type), bindparam("result", type_=Text)
    version, sha256 = bindparam("model_version", type_=String), bindparam("model_sha256", type_=String)
    last = (select(a.c.model_version, a.c.model_sha256, a.c.result).where(a.c.screen_id == screen_id)
            .order_by(a.c.id.desc()).limit(1).subquery("last"))
    said = sql_cast(last.c.result, Text) if postgres else type_coerce(last.c.result, Text)
    same = exists().where(last.c.model_version == version, last.c.model_sha256 == sha256, said == result)
    row = select(screen_id, version, sha256, bindparam("assessed_at", type_=a.c.assessed_at.type),
                 bindparam("assessed_by_id", type_=a.c.assessed_by_id.type),
                 sql_cast(result, JSON) if postgres else result).where(~same)
    columns = ("screen_id", "model_version", "model_sha256", "assessed_at", "assessed_by_id", "result")
    return insert(a).from_select(columns, row)


def _view(bundle: ModelBundle, registry: Registry, answers: frozenset[tuple[str, Any]], age: int | None,
          sex: str | None) -> tuple[str, bytes]:
    """What is recorded of an assessment (as JSON text) and the response body: a pure function of the model,
    the instruments and the screen's answers, age and sex, so built and serialised once per screen state (the
    explanation alone is ~270 contributions)."""
    values = dict(answers)
    result = bundle.assess(values, age=age, sex=sex)
    read = AssessmentRead(
        model=ModelRef(version=bundle.version, sha256=bundle.sha256),
        domains={d: DomainAssessmentRead.model_validate(a) for d, a in result.items()},
        instruments=complete_scores(registry, values),
    )
    recorded = {d: {"probability": a.probability, "threshold": a.threshold, "needs_assessment": a.needs_assessment}
                for d, a in result.items()}
    # Without its closing brace: the recommendations, which depend on more than the answers, are added per read.
    body = read.model_dump_json(exclude={"recommendations"}).encode()
    assert body.endswith(b"}")
    return json.dumps(recorded), body[:-1]


async def assess_screen_hot(hot: Hot, screen_id: str) -> bytes:
    """The model's view of a screen as it stands now, with the recommended routes, as the response body; the
    result is recorded with the model's version where it differs from the screen's last record, and the read
    audited, before it is shown."""
    loaded = await store.load(hot.db, hot.claims.user_id, screen_id, statement=routes_hot.load_statement)
    user = hot.principal(loaded.user)
    screen = check_screen(loaded.screen, screen_id, user)
    bundle, registry = hot.model, hot.registry
    if bundle is None:
        raise Unavailable("No model is being served by this instance.")
    # First by the row as loaded (the same object on every read of an unchanged screen: `store.load` memoises
    # on it), which is cheaper than making the answers a key on every read; then by the answers, age and sex,
    # which screens and users with the same answers share.
    by_load = kept_with(bundle.derived, ("assessment_by_load", registry), lambda: Memo(MEMO_SIZE))
    view: tuple[str, bytes] | None = by_load.get(loaded.key)
    if view is None:
        views = kept_with(bundle.derived, "assessment_view",
                          lambda: lru_cache(maxsize=MEMO_SIZE)(partial(_view, bundle)))
        # Age on the day of the screen, not today: the model was asked about the person in custody then.
        age = age_on(screen.date_of_birth, screen.created_at.date()) if screen.date_of_birth else None
        # Ethnicity is deliberately not passed: it is recorded for monitoring only, never a model input.
        view = by_load.put(loaded.key, views(registry, frozenset((k, a.value) for k, a in loaded.answers.items()),
                                             age, screen.sex))
    recorded, body = view
    book = hot.rulebook
    routes, proposed = await routes_hot.recommendations(hot, book, bundle, loaded, screen)
    async with hot.db.append() as tx:
        tx.add(_record, {"screen_id": screen.id, "model_version": bundle.version, "model_sha256": bundle.sha256,
                         "assessed_at": utcnow(), "assessed_by_id": user.id, "result": recorded})
        audit.record_hot(tx, user.actor, "screen.assessment", "screen", screen.id,
                         {"model_version": bundle.version, "proposed": proposed, **book.provenance()})
    # The view's body ends with its last field (see _view): the recommendations close it.
    return b"".join((body, b',"recommendations":', routes, b"}"))
