"""The feature contract shared one way between the service and `training/`.

A screen (answers keyed by item id, age and recorded sex) becomes one float vector over
``FeatureContract.names``; each domain model reads its own ordered subset (``domain_features``).

Encoding (version ``ENCODING_VERSION``):

* **Items** are encoded as the *points* their answer scores, not the option position, so a higher
  value always means "more of the thing the item asks about": AUDIT 9-10 give 0/2/4, DAST-10 item 3
  (reverse-scored) gives 1 for "no, cannot stop". Boolean items score 1 for a present indicator.
* **Missing answers** are ``NaN``. This covers a declined or interrupted question and the normal
  case of AUDIT items 4-10 that skip logic did not ask (AUDIT-C below 5): the models learn a
  separate value for "not answered", so a gap is never silently read as "no".
* **Instrument totals** (PHQ-9, GAD-7, BJMHS symptom count, AUDIT-C, AUDIT, DAST-10, and the project's
  LD, withdrawal and risk counts) are the scoring engine's totals when every item that should have
  been asked is answered, else ``NaN``: a partial total would understate severity. AUDIT items
  skipped by skip logic count as 0, the convention of the UK AUDIT form (the full AUDIT is only
  completed when AUDIT-C is 5 or more).
* **Age** in whole years, clipped to ``AGE_MIN..AGE_MAX`` (L&D serves all ages, DOMAIN.md section 1);
  ``NaN`` when unknown.
* **Sex** is two indicators, ``sex_female`` and ``sex_other`` (male is the reference); both ``NaN``
  when sex is unknown or not recorded.
* **Ethnicity is never a feature.** It is recorded for the fairness audit only (DOMAIN.md section 5).

Every feature has a finite, ordered set of non-missing values. That is what lets the service
explain an additive model exactly by table look-up: each feature's contribution is read from a
table indexed by the position of its value (missing is the last slot).

This module is part of the service: numpy and the standard library only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

import numpy as np

from screening.instruments.registry import Registry, load_registry
from screening.instruments.schemas import Instrument, Item, ItemType
from screening.instruments.scoring import is_enabled

ENCODING_VERSION = "1"

DOMAINS: tuple[str, ...] = ("mental_health", "learning_disability", "substance_misuse")

# L&D sees children from 10 (the age of criminal responsibility in England and Wales) to old age.
AGE_MIN, AGE_MAX = 10, 90

SEXES: tuple[str, ...] = ("male", "female", "other", "unknown")

# Which instruments inform which domain. Social needs sit with mental health and substance misuse
# because accommodation is the top unmet need of custody entrants (Samele 2021) and clusters with
# both; the LD model reads only the LD indicators so that its explanation stays about LD.
_DOMAIN_INSTRUMENTS: dict[str, tuple[str, ...]] = {
    "mental_health": ("phq9", "gad7", "bjmhs", "risk", "social"),
    "learning_disability": ("ldc",),
    "substance_misuse": ("audit", "dast10", "withdrawal", "social"),
}
_DOMAIN_TOTALS: dict[str, tuple[str, ...]] = {
    "mental_health": ("phq9", "gad7", "bjmhs", "risk"),
    "learning_disability": ("ldc",),
    "substance_misuse": ("auditc", "audit", "dast10", "withdrawal"),
}
_TOTAL_LABELS = {
    "phq9": "PHQ-9 depression score",
    "gad7": "GAD-7 anxiety score",
    "bjmhs": "Number of BJMHS symptoms (questions 1-6)",
    "risk": "Number of suicide and self-harm risk indicators",
    "ldc": "Number of learning disability and communication indicators",
    "auditc": "AUDIT-C alcohol consumption score",
    "audit": "AUDIT alcohol score",
    "dast10": "DAST-10 drug use score",
    "withdrawal": "Number of withdrawal risk indicators",
}

FeatureKind = Literal["item", "total", "age", "sex"]
AnswerValue = int | bool


class EncodingError(ValueError):
    """An answer or demographic value that the contract cannot encode."""


@dataclass(frozen=True)
class Feature:
    name: str
    label: str = field(compare=False)
    kind: FeatureKind
    values: tuple[float, ...]
    # +1: a higher value is more severe, so the model must never lower a probability as it rises.
    monotone: int
    item: Item | None = field(default=None, compare=False, repr=False)
    instrument: str | None = None

    @property
    def n_slots(self) -> int:
        """Table length: one slot per value, plus the last slot for missing."""
        return len(self.values) + 1


def _item_values(item: Item) -> tuple[float, ...]:
    if item.type is ItemType.boolean:
        return (0.0, 1.0)
    return tuple(float(p) for p in sorted({o.points for o in item.options}))


def _item_label(item: Item, instrument: Instrument) -> str:
    prompt = item.prompt.rstrip("?. ")
    if prompt.startswith("Practitioner: "):
        prompt = "Practitioner observed: " + prompt.removeprefix("Practitioner: ")
    return f"{prompt} ({instrument.title.split(' (')[0]})" if instrument.published else prompt


class FeatureContract:
    """Ordered features, their value sets and the answers-to-vector encoding."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        feats: list[Feature] = []
        seen: set[str] = set()
        domain_features: dict[str, list[str]] = {d: [] for d in DOMAINS}
        for domain in DOMAINS:
            for inst_id in _DOMAIN_INSTRUMENTS[domain]:
                inst = registry[inst_id]
                for it in inst.items:
                    if it.id not in seen:
                        feats.append(Feature(it.id, _item_label(it, inst), "item", _item_values(it), 1, it, inst_id))
                        seen.add(it.id)
                    domain_features[domain].append(it.id)
            for inst_id in _DOMAIN_TOTALS[domain]:
                name = f"{inst_id}_total"
                if name not in seen:
                    inst = registry[inst_id]
                    values = tuple(float(v) for v in range(inst.max_total + 1))
                    feats.append(Feature(name, _TOTAL_LABELS[inst_id], "total", values, 1, None, inst_id))
                    seen.add(name)
                domain_features[domain].append(name)
        feats.append(Feature("age", "Age", "age", tuple(float(a) for a in range(AGE_MIN, AGE_MAX + 1)), 0))
        feats.append(Feature("sex_female", "Recorded as female", "sex", (0.0, 1.0), 0))
        feats.append(Feature("sex_other", "Recorded sex is neither male nor female", "sex", (0.0, 1.0), 0))
        for domain in DOMAINS:
            domain_features[domain] += ["age", "sex_female", "sex_other"]
        self.features: tuple[Feature, ...] = tuple(feats)
        self.names: tuple[str, ...] = tuple(f.name for f in feats)
        self.index: dict[str, int] = {n: i for i, n in enumerate(self.names)}
        self.by_name: dict[str, Feature] = {f.name: f for f in feats}
        self.domain_features: dict[str, tuple[str, ...]] = {d: tuple(v) for d, v in domain_features.items()}
        self.domain_index: dict[str, np.ndarray] = {
            d: np.array([self.index[n] for n in v], dtype=np.intp) for d, v in self.domain_features.items()
        }
        # Every value is a whole number, so a value's table slot is a direct array look-up.
        if any(v != int(v) for f in feats for v in f.values):
            raise EncodingError("feature values must be whole numbers for slot look-up")
        self._slot_lut: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        for d, names in self.domain_features.items():
            fs = [self.by_name[n] for n in names]
            vmin = np.array([f.values[0] for f in fs])
            luts = []
            for f in fs:
                lut = np.full(int(f.values[-1] - f.values[0]) + 1, -1, dtype=np.intp)
                for i, v in enumerate(f.values):
                    lut[int(v - f.values[0])] = i
                luts.append(lut)
            starts = np.concatenate([[0], np.cumsum([len(t) for t in luts])[:-1]]).astype(np.intp)
            missing = np.array([len(f.values) for f in fs], dtype=np.intp)
            self._slot_lut[d] = (vmin, starts, np.concatenate(luts), missing)
        self._items = {f.name: f.item for f in feats if f.item is not None}
        self._conditional = [(i, it) for i, it in self._items.items() if it.enable_when is not None]
        self._total_instruments = [registry[f.instrument] for f in feats if f.kind == "total" and f.instrument]
        # Per item: its vector index, whether it is boolean, and the points of each answer value.
        self._points: dict[str, tuple[int, bool, tuple[float, ...]]] = {}
        for name, item in self._items.items():
            pts: tuple[float, ...]
            if item.type is ItemType.boolean:
                pts = (float(item.boolean_points(False)), float(item.boolean_points(True)))
            else:
                pts = tuple(float(o.points) for o in item.options)
            self._points[name] = (self.index[name], item.type is ItemType.boolean, pts)
        self._total_specs = [
            (
                self.index[f"{inst.id}_total"],
                np.array([self.index[i] for i in inst.scored_items], dtype=np.intp),
                [self._items[i] for i in inst.scored_items],
            )
            for inst in self._total_instruments
        ]
        self._hash = self._compute_hash()

    # -- identity -----------------------------------------------------------------------------------

    def _compute_hash(self) -> str:
        spec = {
            "encoding_version": ENCODING_VERSION,
            "features": [[f.name, f.kind, list(f.values), f.monotone] for f in self.features],
            "domains": {d: list(v) for d, v in self.domain_features.items()},
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()

    def contract_hash(self) -> str:
        """sha256 over the ordered names, value sets, domain subsets and the encoding version."""
        return self._hash

    # -- encoding -----------------------------------------------------------------------------------

    def item_points(self, item_id: str, value: AnswerValue) -> float:
        item = self._items[item_id]
        if item.type is ItemType.boolean:
            if not isinstance(value, bool):
                raise EncodingError(f"{item_id}: must be true or false")
            return float(item.boolean_points(value))
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(item.options):
            raise EncodingError(f"{item_id}: must be an option index from 0 to {len(item.options) - 1}")
        return float(item.options[value].points)

    def encode(self, answers: Mapping[str, AnswerValue], *, age: int | None, sex: str | None) -> np.ndarray:
        """One screen as a float64 vector over `names`; NaN marks a missing value."""
        x = np.full(len(self.names), np.nan)
        idx = self.index
        points = self._points
        for item_id, value in answers.items():
            spec = points.get(item_id)
            if spec is None:
                continue
            j, boolean, pts = spec
            if boolean is not isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(pts):
                x[j] = self.item_points(item_id, value)  # raises EncodingError naming the item
            x[j] = pts[value]
        # Totals from the points already encoded; a gap makes the total unknown unless skip logic says
        # the item should not have been asked (then it scores 0, as on the UK AUDIT form).
        for tj, cols, items in self._total_specs:
            v = x[cols]
            gaps = np.flatnonzero(np.isnan(v))
            if len(gaps) and any(is_enabled(items[k], self.registry.items, answers) for k in gaps.tolist()):
                continue
            x[tj] = float(np.nansum(v))
        if age is not None:
            x[idx["age"]] = float(min(max(int(age), AGE_MIN), AGE_MAX))
        if sex is not None and sex not in SEXES:
            raise EncodingError(f"sex must be one of {', '.join(SEXES)}")
        if sex in ("male", "female", "other"):
            x[idx["sex_female"]] = float(sex == "female")
            x[idx["sex_other"]] = float(sex == "other")
        return x

    def slots(self, domain: str, x_domain: np.ndarray) -> np.ndarray:
        """Table slot of each value of a domain vector (missing is the last slot of each feature)."""
        vmin, starts, lut, missing = self._slot_lut[domain]
        nan = np.isnan(x_domain)
        pos = starts + np.where(nan, 0, x_domain - vmin).astype(np.intp)
        return np.where(nan, missing, lut[pos])

    def unasked(self, answers: Mapping[str, AnswerValue]) -> set[str]:
        """Items that skip logic says should not be asked given these answers (so not 'missing')."""
        return {
            item_id
            for item_id, item in self._conditional
            if item_id not in answers and not is_enabled(item, self.registry.items, answers)
        }

    def display_value(
        self, name: str, answers: Mapping[str, AnswerValue], x_value: float, unasked: set[str] | None = None
    ) -> str:
        """The value as a person reads it: the option chosen, yes/no, a score out of its maximum.

        `unasked` is `unasked(answers)` when the caller already has it (it is the costly part).
        """
        feat = self.by_name[name]
        if feat.kind == "item":
            if name not in answers:
                if unasked is None:
                    unasked = self.unasked(answers)
                return "not asked" if name in unasked else "not answered"
            item = self._items[name]
            value = answers[name]
            if item.type is ItemType.boolean:
                return "yes" if value else "no"
            return item.options[int(value)].label
        if x_value != x_value:
            return "not recorded" if feat.kind in ("age", "sex") else "incomplete"
        if feat.kind == "total":
            return f"{int(x_value)} of {int(feat.values[-1])}"
        if feat.kind == "sex":
            return "yes" if x_value else "no"
        return str(int(x_value))


@cache
def default_contract() -> FeatureContract:
    """The contract over the shipped instrument definitions (cached: built once per process)."""
    return FeatureContract(load_registry())
