"""Registry-level operations on a screen's answers: validation, scores of complete instruments, progress.

Scores and progress come from each instrument's memo (`scoring.InstrumentMemo`, on the registry).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from screening.errors import FieldError
from screening.instruments.registry import Registry
from screening.instruments.schemas import Instrument, ScoreResult
from screening.instruments.scoring import Answers, check_value, is_enabled, missing_items


def answer_errors(
    registry: Registry, answers: Mapping[str, Any], *, allow_null: bool = False, field: str = "answers"
) -> list[FieldError]:
    """Every problem with a set of answers, each naming its item id; empty when all are valid."""
    errors = []
    for item_id, value in answers.items():
        item = registry.items.get(item_id)
        if item is None:
            errors.append(FieldError(field=f"{field}.{item_id}", message="unknown item id"))
            continue
        if value is None and allow_null:
            continue
        problem = check_value(item, value)
        if problem:
            errors.append(FieldError(field=f"{field}.{item_id}", message=problem))
    return errors


def instrument_answer_errors(instrument: Instrument, answers: Mapping[str, Any]) -> list[FieldError]:
    """As `answer_errors`, for scoring one instrument: every item of it required, no others allowed."""
    items = {it.id: it for it in instrument.items}
    errors = []
    for item_id, value in answers.items():
        item = items.get(item_id)
        if item is None:
            errors.append(FieldError(field=f"answers.{item_id}", message=f"not an item of {instrument.id}"))
        elif problem := check_value(item, value):
            errors.append(FieldError(field=f"answers.{item_id}", message=problem))
    for item_id in missing_items(instrument, answers):
        errors.append(FieldError(field=f"answers.{item_id}", message="missing: every item is needed to score"))
    return errors


def complete_scores(registry: Registry, answers: Answers) -> list[ScoreResult]:
    """Scores of every instrument whose items are all answered (shared, memoised results: do not mutate)."""
    out = []
    for view in registry.views:
        result = view.derive(view.key(answers))[0]
        if result is not None:
            out.append(result)
    return out


def scores_and_progress(registry: Registry, answers: Answers) -> tuple[list[ScoreResult], dict[str, int]]:
    """`complete_scores` and `progress` together, reading each instrument's memo once (a screen read needs both)."""
    scores = []
    answered = expected = 0
    for view in registry.views:
        result, a, e = view.derive(view.key(answers))
        if result is not None:
            scores.append(result)
        answered += a
        expected += e
    return scores, {"answered": answered, "expected": expected}


def expected_items(registry: Registry, answers: Answers) -> list[str]:
    """Items to ask, in registry order, with skip logic applied to the answers so far."""
    return [
        item_id for item_id, item in registry.items.items() if is_enabled(item, registry.items, answers)
    ]


def progress(registry: Registry, answers: Answers) -> dict[str, int]:
    """Items answered of those to ask, with skip logic applied."""
    answered = expected = 0
    for view in registry.views:
        if view.owned:
            _, a, e = view.derive(view.key(answers))
            answered += a
            expected += e
    return {"answered": answered, "expected": expected}
