"""The columns of the pseudonymised training export, defined in one place.

Each group names its columns and fills them from one `ExportRow`. To add columns, add a group to `GROUPS`
(and, for another domain's table, a source in `linked.py`); the CSV header and the Parquet schema
both come from here.

What a column may carry: nothing that names or directly identifies a person (no custody record, name,
date of birth, person reference, free text, exact date or user name). See the README (security section).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from screening.instruments.registry import Registry
from screening.instruments.schemas import ScoreResult
from screening.screens.models import Screen

Value = int | float | str | None


@dataclass(frozen=True)
class ExportRow:
    screen: Screen
    answers: dict[str, Any]
    scores: dict[str, ScoreResult]
    export_key: bytes
    extra: dict[str, Any] = field(default_factory=dict)


def derive_export_key(person_key: str) -> bytes:
    """A key of its own for export ids, so an export id never equals the hash stored in the database.

    Derived (HMAC with a fixed label) rather than configured separately, so it rotates with the person key.
    """
    return hmac.new(person_key.encode(), b"screening/export-id/v1", hashlib.sha256).digest()


def _keyed(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def person_id(row: ExportRow) -> str:
    # Repeat contacts of one person share an id (linkage survives); a screen without a person
    # reference gets an id of its own.
    s = row.screen
    return _keyed(row.export_key, f"person:{s.person_hash}" if s.person_hash else f"screen:{s.id}")


# The service's reporting bands, the same as the training pipeline's fairness audit
# (training/data.py `age_band`): 18-25 is a band of its own because young adults fall between youth and
# adult services (Transition to Adulthood Alliance); wide bands above keep rows hard to single out.
AGE_BANDS: list[tuple[int, str]] = [(18, "under 18"), (26, "18-25"), (41, "26-40"), (56, "41-55")]


def age_band(dob: date, on: date) -> str:
    age = on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))
    for upper, label in AGE_BANDS:
        if age < upper:
            return label
    return "56+"


def _answer(value: Any) -> Value:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    return int(value)


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "str", "int" or "float": the Parquet type; CSV writes all as text, None as blank
    get: Callable[[ExportRow], Value]


def _identity_columns(_: Registry) -> list[Column]:
    return [
        Column("record_id", "str", lambda r: _keyed(r.export_key, f"record:{r.screen.id}")),
        Column("person_id", "str", person_id),
        Column("month", "str", lambda r: r.screen.created_at.strftime("%Y-%m")),
        Column("age_band", "str", lambda r: age_band(r.screen.date_of_birth, r.screen.created_at.date())),
        Column("sex", "str", lambda r: r.screen.sex),
        # For equality monitoring and the fairness audit only; never a model input (DOMAIN.md §5).
        Column("ethnicity", "str", lambda r: r.screen.ethnicity),
        # Kept for drift and per-suite audits; small suite + month + age band could single a person
        # out, which is why this export goes to data scientists only and every download is audited.
        Column("custody_suite", "str", lambda r: r.screen.custody_suite),
    ]


def _answer_columns(registry: Registry) -> list[Column]:
    # Ordinal items: the 0-based option index; yes/no items: 1 = present, 0 = absent; blank = not asked.
    def getter(item_id: str) -> Callable[[ExportRow], Value]:
        return lambda r: _answer(r.answers.get(item_id))

    return [Column(item_id, "int", getter(item_id)) for item_id in registry.items]


def _score_columns(registry: Registry) -> list[Column]:
    def total(inst_id: str) -> Callable[[ExportRow], Value]:
        return lambda r: r.scores[inst_id].total if inst_id in r.scores else None

    def positive(inst_id: str) -> Callable[[ExportRow], Value]:
        return lambda r: int(r.scores[inst_id].positive) if inst_id in r.scores else None

    cols: list[Column] = []
    for inst in registry:
        cols.append(Column(f"{inst.id}_total", "int", total(inst.id)))
        cols.append(Column(f"{inst.id}_positive", "int", positive(inst.id)))
    return cols


OUTCOMES = ("outcome_mental_health", "outcome_learning_disability", "outcome_substance_misuse")
DECISIONS = ("override_mental_health", "override_learning_disability", "override_substance_misuse", "referrals")
MODEL = ("model_version", "model_mental_health_probability", "model_learning_disability_probability",
         "model_substance_misuse_probability")


def _linked_columns(_: Registry) -> list[Column]:
    # From the model's assessments and the practitioner's decisions (exports/linked.py). Outcomes are
    # the practitioner's confirmed needs (1 = confirmed, 0 = ruled out); blank where no decision was
    # recorded or the domain is not deployed, so the training pipeline's reader never changes.
    def getter(name: str) -> Callable[[ExportRow], Value]:
        return lambda r: r.extra.get(name)

    return ([Column(n, "str" if n == "model_version" else "float", getter(n)) for n in MODEL]
            + [Column(n, "int", getter(n)) for n in DECISIONS + OUTCOMES])


GROUPS: list[Callable[[Registry], list[Column]]] = [
    _identity_columns, _answer_columns, _score_columns, _linked_columns,
]


def columns(registry: Registry) -> list[Column]:
    return [c for group in GROUPS for c in group(registry)]


# Never in the export, whatever a future group adds: checked by tests/security/test_export.py.
FORBIDDEN_COLUMNS = frozenset({"id", "screen_id", "custody_record", "date_of_birth", "person_hash", "person_ref",
                               "name", "full_name", "created_at", "finalised_at", "created_by", "idempotency_key"})
