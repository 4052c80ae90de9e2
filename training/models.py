"""Candidate models, Platt calibration, and the exact additive explanation tables.

Three families are compared on the same splits:

* ``logistic``: L2-regularised logistic regression on median-imputed, standardised features with a
  missing-value indicator per feature (additive per feature: a feature's value column and its
  indicator column only ever move together);
* ``boosted``: gradient-boosted trees with interactions (HistGradientBoosting), the accuracy
  reference an additive model is measured against;
* ``glassbox``: boosted single-feature trees (HistGradientBoosting with ``interaction_cst=
  "no_interactions"``), an explainable boosting machine in all but name: every tree reads one
  feature, so the log-odds are a sum of one shape function per feature.

Only models that are additive (so the explanation is exact) and monotone in every severity feature
(more severe answers never lower a probability) may be served; `screen` checks both exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from screening.model.features import Feature

FAMILIES = ("logistic", "boosted", "glassbox")

# Tolerances for the eligibility checks. Additivity is checked in float64, so a truly additive model
# is exact to rounding (about 1e-12 on log-odds of a few units); a model with interactions misses by
# orders of magnitude more.
ADDITIVITY_TOL = 1e-8
MONOTONE_TOL = 1e-12


def make_estimator(family: str, features: list[Feature], seed: int) -> BaseEstimator:
    monotone = [f.monotone for f in features]
    if family == "logistic":
        return Pipeline(
            [
                ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
                ("scale", StandardScaler()),
                ("clf", LogisticRegression(C=0.1, max_iter=5000)),
            ]
        )
    common = {"learning_rate": 0.05, "early_stopping": False, "random_state": seed, "monotonic_cst": monotone}
    if family == "boosted":
        return HistGradientBoostingClassifier(max_iter=200, max_leaf_nodes=15, l2_regularization=1.0, **common)
    if family == "glassbox":
        return HistGradientBoostingClassifier(
            max_iter=300,
            max_leaf_nodes=3,
            l2_regularization=1.0,
            interaction_cst="no_interactions",
            **common,
        )
    raise ValueError(f"unknown model family {family!r}")


def final_step(estimator: BaseEstimator) -> BaseEstimator:
    return estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator


class PlattCalibrated(ClassifierMixin, BaseEstimator):  # type: ignore[misc]  # scikit-learn is untyped
    """A fitted classifier whose log-odds are mapped by ``a * raw + b`` (Platt 1999).

    Sigmoid calibration keeps an additive model additive (each contribution is scaled by ``a`` and
    ``b`` joins the base value), which isotonic calibration would not.
    """

    def __init__(self, estimator: BaseEstimator | None = None) -> None:
        self.estimator = estimator

    def fit(self, X: np.ndarray, y: np.ndarray) -> PlattCalibrated:
        if self.estimator is None:
            raise ValueError("PlattCalibrated needs a fitted estimator")
        raw = self.estimator.decision_function(X).reshape(-1, 1)
        # Effectively unpenalised: two parameters fitted on thousands of rows.
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(raw, y)
        self.a_ = float(lr.coef_[0, 0])
        self.b_ = float(lr.intercept_[0])
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        assert self.estimator is not None, "fit() first"
        return np.asarray(self.a_ * self.estimator.decision_function(X) + self.b_, dtype=np.float64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.decision_function(X) > 0).astype(int)


@dataclass
class Tables:
    """Exact interventional SHAP values of an additive model, as one look-up table per feature.

    ``tables[j][k]`` is feature j's contribution when its value is ``features[j].values[k]`` (the
    last slot: missing). ``base_value`` is the mean calibrated log-odds over the background, so for
    every row ``base_value + sum_j tables[j][slot_j] == raw score``.
    """

    base_value: float
    tables: list[np.ndarray]
    additivity_error: float = field(default=np.inf)
    monotone_violations: list[str] = field(default_factory=list)


def slot_matrix(features: list[Feature], X: np.ndarray) -> np.ndarray:
    out = np.empty(X.shape, dtype=np.intp)
    for j, f in enumerate(features):
        col = X[:, j]
        idx = np.searchsorted(np.asarray(f.values), col)
        out[:, j] = np.where(np.isnan(col), len(f.values), idx)
    return out


def additive_tables(model: PlattCalibrated, features: list[Feature], background: np.ndarray, check: np.ndarray) -> Tables:
    """Read each feature's shape function off the model by probing, then verify additivity on `check`.

    For an additive f(x) = c + sum_j g_j(x_j), interventional SHAP is phi_j = g_j(x_j) - E[g_j(X_j)]
    (Lundberg & Lee 2017, Janzing et al. 2020), and g_j can be read by changing only feature j of any
    reference row. Probing is exact whatever the family, and `additivity_error` proves the premise.
    """
    ref = background[0]
    probes, owners = [], []
    for j, f in enumerate(features):
        rows = np.tile(ref, (f.n_slots, 1))
        rows[:, j] = [*f.values, np.nan]
        probes.append(rows)
        owners.append(len(rows))
    g_all = model.decision_function(np.vstack(probes))
    bg_slots = slot_matrix(features, background)
    tables: list[np.ndarray] = []
    start = 0
    for j, n in enumerate(owners):
        g = g_all[start : start + n]
        start += n
        tables.append(g - g[bg_slots[:, j]].mean())
    base = float(model.decision_function(background).mean())
    t = Tables(base_value=base, tables=tables)
    t.additivity_error = float(np.abs(explain(t, features, check).sum(axis=1) + base - model.decision_function(check)).max())
    t.monotone_violations = [
        f.name for f, tab in zip(features, tables, strict=True) if f.monotone > 0 and np.any(np.diff(tab[:-1]) < -MONOTONE_TOL)
    ]
    return t


def explain(t: Tables, features: list[Feature], X: np.ndarray) -> np.ndarray:
    slots = slot_matrix(features, X)
    return np.column_stack([t.tables[j][slots[:, j]] for j in range(len(features))])
