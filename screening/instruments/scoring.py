"""The scoring engine: pure functions over a resolved instrument and a mapping of answers.

Answers are keyed by item id. Ordinal items take the 0-based index of the chosen option (an int);
boolean items take a bool, `True` meaning the respondent said yes. Points come from the definition,
never from the position, so reverse-scored items (DAST-10 item 3) and non-linear options (AUDIT
items 9 and 10: 0, 2, 4) score as published.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from screening.instruments.schemas import (
    AllOf,
    AnyOf,
    Flag,
    Instrument,
    Item,
    ItemAtLeast,
    ItemTrue,
    ItemType,
    Rule,
    ScoreResult,
    SumAtLeast,
    TotalAtLeast,
)

AnswerValue = int | bool
Answers = Mapping[str, AnswerValue]


@dataclass(frozen=True)
class AnswerError:
    item_id: str
    message: str


class IncompleteAnswers(ValueError):
    def __init__(self, instrument_id: str, missing: list[str]) -> None:
        super().__init__(f"{instrument_id}: missing answers for {', '.join(missing)}")
        self.instrument_id = instrument_id
        self.missing = missing


def check_value(item: Item, value: object) -> str | None:
    """Why `value` is not a valid answer to `item`, or None when it is."""
    if item.type is ItemType.boolean:
        if not isinstance(value, bool):
            return "must be true or false"
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be an integer option index from 0 to {len(item.options) - 1}"
    if not 0 <= value < len(item.options):
        return f"must be an option index from 0 to {len(item.options) - 1}, got {value}"
    return None


def _item_points(items: Mapping[str, Item], answers: Answers, item_id: str) -> int | None:
    if item_id not in answers:
        return None
    return items[item_id].points(answers[item_id])


def holds(rule: Rule, items: Mapping[str, Item], answers: Answers, total: int | None = None) -> bool:
    """Evaluate a rule. Unanswered items never satisfy a condition."""
    match rule:
        case TotalAtLeast(total_at_least=n):
            return total is not None and total >= n
        case ItemTrue(item_true=item_id):
            return answers.get(item_id) is True
        case ItemAtLeast(item_at_least=body):
            pts = _item_points(items, answers, body.item)
            return pts is not None and pts >= body.value
        case SumAtLeast(sum_at_least=body):
            each = [_item_points(items, answers, i) for i in body.items]
            return all(p is not None for p in each) and sum(p for p in each if p is not None) >= body.value
        case AnyOf(any=rules):
            return any(holds(r, items, answers, total) for r in rules)
        case AllOf(all=rules):
            return all(holds(r, items, answers, total) for r in rules)
    raise TypeError(f"unknown rule {rule!r}")


def describe(rule: Rule) -> str:
    """A rule in plain words, for the threshold text and the API docs."""
    match rule:
        case TotalAtLeast(total_at_least=n):
            return f"total of {n} or more"
        case ItemTrue(item_true=item_id):
            return f"yes to {item_id}"
        case ItemAtLeast(item_at_least=body):
            return f"{body.item} scoring {body.value} or more"
        case SumAtLeast(sum_at_least=body):
            return f"{' + '.join(body.items)} of {body.value} or more"
        case AnyOf(any=rules):
            return " or ".join(describe(r) for r in rules)
        case AllOf(all=rules):
            return " and ".join(describe(r) for r in rules)
    raise TypeError(f"unknown rule {rule!r}")


def is_enabled(item: Item, items: Mapping[str, Item], answers: Answers) -> bool:
    """Skip logic: whether the item should be asked given the answers so far."""
    return item.enable_when is None or holds(item.enable_when, items, answers)


def missing_items(instrument: Instrument, answers: Answers) -> list[str]:
    return [it.id for it in instrument.items if it.id not in answers]


def flags(instrument: Instrument, answers: Answers) -> list[Flag]:
    out = [
        Flag(item_id=it.id, text=it.flag, urgent=it.urgent)
        for it in instrument.items
        if it.flag and it.id in answers and it.present(answers[it.id])
    ]
    return sorted(out, key=lambda f: not f.urgent)


def score(instrument: Instrument, answers: Answers) -> ScoreResult:
    """Score a fully answered instrument exactly as its definition (and so its manual) says.

    Raises IncompleteAnswers when any item of the instrument is unanswered. Answers must already
    have passed `check_value`.
    """
    missing = missing_items(instrument, answers)
    if missing:
        raise IncompleteAnswers(instrument.id, missing)
    items = {it.id: it for it in instrument.items}
    total = sum(items[i].points(answers[i]) for i in instrument.scored_items)
    band = next((b for b in instrument.bands if b.min <= total <= b.max), None)
    return ScoreResult(
        instrument_id=instrument.id,
        version=instrument.version,
        total=total,
        max_total=instrument.max_total,
        band=band.name if band else None,
        band_label=band.label if band else None,
        positive=holds(instrument.positive, items, answers, total),
        threshold=f"{describe(instrument.positive)} ({instrument.positive_source})",
        flags=flags(instrument, answers),
    )


# Distinct answer sets remembered per instrument and process (an entry is about a kilobyte: ~11 MB at most).
MEMO_SIZE = 1024


class InstrumentMemo:
    """One instrument's score (None until every item is answered) and progress, memoised by its answers.

    Both are pure functions of the instrument and its own items' answers: skip logic and positive rules
    name only items of their own instrument (the registry checks it at load). A tablet reads a screen
    far more often than it changes it, and a PATCH usually touches one instrument: the others come
    from the memo.
    """

    def __init__(self, instrument: Instrument, items: Mapping[str, Item], owner: Mapping[str, str]) -> None:
        self.instrument = instrument
        self.item_ids = tuple(it.id for it in instrument.items)
        # Progress counts the items an instrument owns (AUDIT-C asks nothing of its own: AUDIT does).
        self.owned = [(it.id, it) for it in instrument.items if owner.get(it.id) == instrument.id]
        self._items = items
        self.derive = lru_cache(maxsize=MEMO_SIZE)(self._derive)

    def key(self, answers: Answers) -> tuple[AnswerValue | None, ...]:
        # Item types are fixed by the definition and stored answers were validated against them, so one
        # item's values are all bool or all int: True and 1 never meet in the same slot.
        return tuple(map(answers.get, self.item_ids))

    def _derive(self, values: tuple[AnswerValue | None, ...]) -> tuple[ScoreResult | None, int, int]:
        """(score or None, items answered, items to ask). Shared results: callers must not mutate them."""
        answers = {i: v for i, v in zip(self.item_ids, values, strict=True) if v is not None}
        result = None if missing_items(self.instrument, answers) else score(self.instrument, answers)
        expected = [i for i, item in self.owned if is_enabled(item, self._items, answers)]
        return result, sum(1 for i in expected if i in answers), len(expected)
