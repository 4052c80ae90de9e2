"""Training data in the export format, and its conversion to feature matrices through the contract.

The export format (what `GET /api/v1/exports/training-data` is to produce, and what `synthetic`
generates) is one row per screen, CSV or parquet:

* one column per item id; the answer as the API stores it: ordinal items the 0-based option index,
  boolean items 0/1 (or true/false); empty for unanswered or not asked;
* ``age`` in years, or ``age_band`` like ``"18-24"`` / ``"65+"`` when the export is pseudonymised
  (the band's midpoint is used);
* ``sex``: male, female, other or unknown;
* ``ethnicity``: any label; used for the fairness audit only, never as a feature;
* outcomes of the full assessment, 0/1: ``outcome_mental_health``, ``outcome_learning_disability``,
  ``outcome_substance_misuse``.

Columns the contract does not know are ignored; a missing outcome or demographic column is an error.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from screening.instruments.schemas import ItemType
from screening.model.features import DOMAINS, FeatureContract

OUTCOMES = {d: f"outcome_{d}" for d in DOMAINS}


class DataError(ValueError):
    """The training data does not have the export format."""


@dataclass(frozen=True)
class Dataset:
    X: np.ndarray  # over contract.names
    y: dict[str, np.ndarray]
    sex: np.ndarray
    age_band: np.ndarray
    ethnicity: np.ndarray
    answers: list[dict[str, int | bool]]
    fingerprint: str


def age_band(age: float) -> str:
    # Bands follow the service's reporting bands; 18-25 is its own group because young adults fall
    # between youth and adult services (Transition to Adulthood Alliance, DOMAIN.md section 1).
    if math.isnan(age):
        return "unknown"
    if age < 18:
        return "under 18"
    if age <= 25:
        return "18-25"
    if age <= 40:
        return "26-40"
    if age <= 55:
        return "41-55"
    return "56+"


def _band_midpoint(band: object) -> float:
    if not isinstance(band, str):
        return math.nan
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", band)
    if m:
        return (int(m.group(1)) + int(m.group(2))) / 2
    m = re.fullmatch(r"\s*(\d+)\s*\+\s*", band)
    if m:
        return int(m.group(1)) + 5.0
    m = re.fullmatch(r"\s*under\s+(\d+)\s*", band, flags=re.IGNORECASE)
    if m:
        # Custody screens of children are 10-17 (the age of criminal responsibility is 10 in England).
        return (10 + int(m.group(1)) - 1) / 2
    if band.strip().lower() == "unknown":
        return math.nan
    raise DataError(f"age_band {band!r} is not like '18-24' or '65+'")


def load_export(path: Path) -> pd.DataFrame:
    """Read an export file (CSV or parquet) and check it has the columns the pipeline needs."""
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    need = [*OUTCOMES.values(), "sex", "ethnicity"]
    lacking = [c for c in need if c not in df.columns]
    if "age" not in df.columns and "age_band" not in df.columns:
        lacking.append("age or age_band")
    if lacking:
        raise DataError(f"{path.name}: missing columns {lacking}")
    if "age" not in df.columns:
        df["age"] = df["age_band"].map(_band_midpoint)
    return df


def fingerprint(df: pd.DataFrame) -> str:
    """sha256 of the rows in a canonical form: the manifest's training-data fingerprint."""
    h = hashlib.sha256(",".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


def to_dataset(df: pd.DataFrame, contract: FeatureContract) -> Dataset:
    """Encode every row through the service's own contract, so training sees what serving sees.

    Rows without a recorded outcome for every domain are unlabelled (the practitioner did not confirm or
    override the need) and are left out; a file with none left is an error, not an empty model.
    """
    outcome_cols = list(OUTCOMES.values())
    labelled = df[outcome_cols].notna().all(axis=1)
    if not labelled.any():
        raise DataError(f"no row has all of {', '.join(outcome_cols)}: nothing to train on")
    df = df[labelled].reset_index(drop=True)
    items = {c: contract.registry.items[c] for c in df.columns if c in contract.registry.items}
    answers: list[dict[str, int | bool]] = []
    records = df[list(items)].to_dict("records")
    for rec in records:
        a: dict[str, int | bool] = {}
        for item_id, v in rec.items():
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            a[item_id] = bool(v) if items[item_id].type is ItemType.boolean else int(v)
        answers.append(a)
    ages = pd.to_numeric(df["age"], errors="coerce").to_numpy(dtype=float)
    sexes = df["sex"].fillna("unknown").astype(str).str.lower().to_numpy()
    X = np.vstack(
        [
            contract.encode(a, age=None if math.isnan(age) else int(age), sex=s)
            for a, age, s in zip(answers, ages, sexes, strict=True)
        ]
    )
    y = {d: df[col].to_numpy(dtype=int) for d, col in OUTCOMES.items()}
    for d, v in y.items():
        if not set(np.unique(v)) <= {0, 1}:
            raise DataError(f"{OUTCOMES[d]} must be 0/1")
    return Dataset(
        X=X,
        y=y,
        sex=sexes,
        age_band=np.array([age_band(a) for a in ages]),
        ethnicity=df["ethnicity"].fillna("not stated").astype(str).to_numpy(),
        answers=answers,
        fingerprint=fingerprint(df),
    )
