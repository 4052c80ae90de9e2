"""Metrics, bootstrap intervals, threshold choice, instrument-rule baselines and the group audit."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from fairlearn.metrics import MetricFrame
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from screening.instruments.registry import Registry
from screening.instruments.scoring import holds

# Misses are the costly error in custody screening (police screening missed about a quarter of serious
# mental illness and half of alcohol-withdrawal risk, HELP-PC; DOMAIN.md section 1), so thresholds
# are set for sensitivity of at least 0.85 and the alert rate this costs is reported.
TARGET_SENSITIVITY = 0.85
N_BOOT = 200


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-width probability bins (Guo et al. 2017)."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            total += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(total)


def threshold_for_sensitivity(y: np.ndarray, p: np.ndarray, target: float = TARGET_SENSITIVITY) -> float:
    """The highest threshold whose sensitivity on (y, p) is at least `target`."""
    pos = np.sort(p[y == 1])
    k = math.floor((1 - target) * len(pos))
    return float(pos[min(k, len(pos) - 1)])


def _safe_auc(y: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else math.nan


def _rates(y: np.ndarray, alert: np.ndarray) -> dict[str, float]:
    tp = float((alert & (y == 1)).sum())
    fp = float((alert & (y == 0)).sum())
    pos, neg = float((y == 1).sum()), float((y == 0).sum())
    return {
        "sensitivity": tp / pos if pos else math.nan,
        "specificity": 1 - fp / neg if neg else math.nan,
        "fpr": fp / neg if neg else math.nan,
        "ppv": tp / (tp + fp) if tp + fp else math.nan,
        "alert_rate": float(alert.mean()),
    }


def metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    out = {
        "auroc": _safe_auc(y, p),
        "auprc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "ece": ece(y, p),
        "threshold": threshold,
        "prevalence": float(y.mean()),
    }
    out.update(_rates(y, p >= threshold))
    return out


def bootstrap_ci(
    y: np.ndarray, p: np.ndarray, fn: Callable[[np.ndarray, np.ndarray], float], seed: int, n: int = N_BOOT
) -> list[float]:
    """95% percentile bootstrap interval over screens."""
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        v = fn(y[i], p[i])
        if not math.isnan(v):
            vals.append(v)
    return [float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))] if vals else [math.nan, math.nan]


def with_intervals(y: np.ndarray, p: np.ndarray, threshold: float, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = metrics(y, p, threshold)
    fns: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
        "auroc": _safe_auc,
        "auprc": lambda a, b: float(average_precision_score(a, b)) if a.any() else math.nan,
        "brier": lambda a, b: float(brier_score_loss(a, b)),
        "sensitivity": lambda a, b: _rates(a, b >= threshold)["sensitivity"],
        "specificity": lambda a, b: _rates(a, b >= threshold)["specificity"],
    }
    out["ci95"] = {k: bootstrap_ci(y, p, f, seed) for k, f in fns.items()}
    return out


# --- instrument-rule baselines -----------------------------------------------------------------------

# The rule a practitioner would apply without the model, per domain (DOMAIN.md section 2):
# mental health: PHQ-9 >= 10 (Kroenke 2001), GAD-7 >= 10 (Spitzer 2006) or the BJMHS referral rule
# (Steadman 2005); learning disability: the project's LD rule (ldc.yaml); substance misuse:
# AUDIT >= 8 or AUDIT-C >= 5 (WHO; OHID), or DAST-10 >= 3 (Skinner 1982), or any withdrawal sign.
BASELINE_INSTRUMENTS = {
    "mental_health": ("phq9", "gad7", "bjmhs"),
    "learning_disability": ("ldc",),
    "substance_misuse": ("auditc", "audit", "dast10", "withdrawal"),
}


def baseline_rule(registry: Registry, domain: str, answers: dict[str, int | bool]) -> bool:
    """Whether any of the domain's instrument rules fires on the answers given (partial screens too)."""
    for inst_id in BASELINE_INSTRUMENTS[domain]:
        inst = registry[inst_id]
        items = {it.id: it for it in inst.items}
        scored = [i for i in inst.scored_items if i in answers]
        total = sum(items[i].points(answers[i]) for i in scored)
        if holds(inst.positive, items, answers, total):
            return True
    return False


# --- group audit ------------------------------------------------------------------------------------


def wilson(k: float, n: float) -> list[float]:
    """Wilson 95% interval for a proportion: well behaved for small groups, unlike the normal one."""
    if n == 0:
        return [math.nan, math.nan]
    z = 1.96
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [centre - half, centre + half]


def group_audit(y: np.ndarray, p: np.ndarray, threshold: float, groups: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per-group AUROC, calibration-in-the-large, sensitivity, FPR and PPV (fairlearn MetricFrame)."""
    alert = p >= threshold

    def fm(fn: Callable[[np.ndarray, np.ndarray], float]) -> Callable[[np.ndarray, np.ndarray], float]:
        return fn

    out: dict[str, Any] = {}
    for name, g in groups.items():
        score_frame = MetricFrame(
            metrics={
                "n": fm(lambda a, b: float(len(a))),
                "prevalence": fm(lambda a, b: float(np.mean(a))),
                "mean_predicted": fm(lambda a, b: float(np.mean(b))),
                "auroc": fm(lambda a, b: _safe_auc(a, b)),
                "ece": fm(lambda a, b: ece(a, b)),
            },
            y_true=y,
            y_pred=p,
            sensitive_features=g,
        )
        alert_frame = MetricFrame(
            metrics={
                "sensitivity": fm(lambda a, b: _rates(a, b)["sensitivity"]),
                "fpr": fm(lambda a, b: _rates(a, b)["fpr"]),
                "ppv": fm(lambda a, b: _rates(a, b)["ppv"]),
                "alert_rate": fm(lambda a, b: _rates(a, b)["alert_rate"]),
            },
            y_true=y,
            y_pred=alert,
            sensitive_features=g,
        )
        rows: dict[str, Any] = {}
        for level in score_frame.by_group.index:
            m = g == level
            yy, aa = y[m], alert[m]
            row: dict[str, Any] = {k: float(v) for k, v in score_frame.by_group.loc[level].items()}
            row.update({k: float(v) for k, v in alert_frame.by_group.loc[level].items()})
            row["sensitivity_ci95"] = wilson(float((aa & (yy == 1)).sum()), float((yy == 1).sum()))
            row["fpr_ci95"] = wilson(float((aa & (yy == 0)).sum()), float((yy == 0).sum()))
            row["ppv_ci95"] = wilson(float((aa & (yy == 1)).sum()), float(aa.sum()))
            rows[str(level)] = row
        out[name] = {
            "groups": rows,
            "sensitivity_difference": float(alert_frame.difference()["sensitivity"]),
            "fpr_difference": float(alert_frame.difference()["fpr"]),
        }
    return out
