"""One command from data to a verified artifact: split, compare, calibrate, select, evaluate, audit, export."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.metrics import log_loss, roc_auc_score
from threadpoolctl import threadpool_limits

from screening.model.features import DOMAINS, ENCODING_VERSION, FeatureContract, default_contract
from training import card, evaluate
from training.data import Dataset, load_export, to_dataset
from training.export import (
    library_versions,
    run_onnx,
    sha256_file,
    shap_values,
    tables_json,
    to_onnx_model,
    write_json,
)
from training.models import ADDITIVITY_TOL, FAMILIES, PlattCalibrated, additive_tables, explain, make_estimator
from training.synthetic import generate

# Gates an artifact must pass before it is written (the acceptance figures).
ONNX_PARITY_TOL = 1e-5
SHAP_AGREEMENT_TOL = 1e-6
BACKGROUND_ROWS = 500
SHAP_CHECK_ROWS = 200
# Within this validation log-loss of the best eligible model, the simpler family is preferred
# (logistic before glass-box): a difference this small is below the split's sampling noise.
SELECTION_MARGIN = 0.002


class GateError(RuntimeError):
    """A trained model failed an acceptance gate; nothing is written as a usable artifact."""


@dataclass(frozen=True)
class Splits:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split(n: int, seed: int) -> Splits:
    """60/20/20: fit on train; calibrate, select and set thresholds on validation; report on test."""
    perm = np.random.default_rng(seed + 1).permutation(n)
    a, b = int(0.6 * n), int(0.8 * n)
    return Splits(np.sort(perm[:a]), np.sort(perm[a:b]), np.sort(perm[b:]))


def _candidate(family: str, contract: FeatureContract, domain: str, ds: Dataset, sp: Splits, seed: int) -> dict[str, Any]:
    feats = [contract.by_name[n] for n in contract.domain_features[domain]]
    X = ds.X[:, contract.domain_index[domain]]
    y = ds.y[domain]
    est = clone(make_estimator(family, feats, seed)).fit(X[sp.train], y[sp.train])
    model = PlattCalibrated(est).fit(X[sp.val], y[sp.val])
    bg = X[sp.train][:BACKGROUND_ROWS]
    tables = additive_tables(model, feats, bg, X[sp.val][:1000])
    pv = model.predict_proba(X[sp.val])[:, 1]
    pt = model.predict_proba(X[sp.test])[:, 1]
    additive = tables.additivity_error <= ADDITIVITY_TOL
    return {
        "family": family,
        "model": model,
        "features": feats,
        "tables": tables,
        "background": bg,
        "summary": {
            "val_log_loss": float(log_loss(y[sp.val], pv)),
            "val_auroc": float(roc_auc_score(y[sp.val], pv)),
            "test_auroc": float(roc_auc_score(y[sp.test], pt)),
            "test_brier": float(np.mean((pt - y[sp.test]) ** 2)),
            "additive": bool(additive),
            "additivity_error": tables.additivity_error,
            "monotone": not tables.monotone_violations,
            "monotone_violations": tables.monotone_violations,
            "eligible": bool(additive and not tables.monotone_violations),
        },
    }


def select(cands: list[dict[str, Any]]) -> dict[str, Any]:
    """Lowest validation log-loss among eligible candidates; the simpler family wins near-ties.

    Log-loss is a proper scoring rule, so it rewards discrimination and calibration together, which
    is what a probability shown to a nurse needs.
    """
    eligible = [c for c in cands if c["summary"]["eligible"]]
    if not eligible:
        raise GateError("no candidate is both additive and monotone; refusing to export")
    best = min(c["summary"]["val_log_loss"] for c in eligible)
    order = {"logistic": 0, "glassbox": 1, "boosted": 2}
    near = [c for c in eligible if c["summary"]["val_log_loss"] <= best + SELECTION_MARGIN]
    return min(near, key=lambda c: order[c["family"]])


def train(out: Path, *, rows: int, seed: int, data: Path | None = None, plots: bool = True) -> dict[str, Any]:
    """Train, evaluate, audit and export all three domain models into `out`; returns the manifest."""
    # One thread: HistGradientBoosting's sums then run in a fixed order, so the same seed gives the
    # same artifact on any machine, and OpenMP does not spin against other work on a busy host.
    with threadpool_limits(1):
        return _train(out, rows=rows, seed=seed, data=data, plots=plots)


def _train(out: Path, *, rows: int, seed: int, data: Path | None, plots: bool) -> dict[str, Any]:
    contract = default_contract()
    if data is None:
        df = generate(rows, seed)
        source = {"kind": "synthetic", "generator": "training.synthetic", "rows": rows, "seed": seed}
    else:
        df = load_export(data)
        source = {"kind": "export", "file": data.name, "rows": len(df), "seed": seed}
    ds = to_dataset(df, contract)
    source["fingerprint"] = ds.fingerprint
    sp = split(len(df), seed)
    out.mkdir(parents=True, exist_ok=True)
    registry = contract.registry

    domains: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    report: dict[str, Any] = {"comparison": {}, "baseline": {}, "audit": {}, "curves": {}, "importance": {}}
    explanations: dict[str, Any] = {}
    for d_i, domain in enumerate(DOMAINS):
        cands = [_candidate(f, contract, domain, ds, sp, seed) for f in FAMILIES]
        report["comparison"][domain] = {c["family"]: c["summary"] for c in cands}
        chosen = select(cands)
        model, feats, tables = chosen["model"], chosen["features"], chosen["tables"]
        X = ds.X[:, contract.domain_index[domain]]
        y = ds.y[domain]
        p_val = model.predict_proba(X[sp.val])[:, 1]
        threshold = evaluate.threshold_for_sensitivity(y[sp.val], p_val)
        Xt, yt = X[sp.test], y[sp.test]
        p_test = model.predict_proba(Xt)[:, 1]

        onx = to_onnx_model(model, len(feats), domain)
        onnx_raw, onnx_prob = run_onnx(onx, Xt)
        parity = float(np.abs(onnx_prob - p_test).max())
        if parity > ONNX_PARITY_TOL:
            raise GateError(f"{domain}: ONNX probabilities differ from scikit-learn by {parity:.2e}")
        phi = explain(tables, feats, Xt)
        table_raw = tables.base_value + phi.sum(axis=1)
        n_check = min(SHAP_CHECK_ROWS, len(Xt))
        shap_phi = shap_values(model, feats, chosen["background"], Xt[:n_check])
        shap_diff = float(np.abs(shap_phi - phi[:n_check]).max())
        if shap_diff > SHAP_AGREEMENT_TOL:
            raise GateError(f"{domain}: explanation tables differ from shap by {shap_diff:.2e}")

        m = evaluate.with_intervals(yt, p_test, threshold, seed + d_i)
        base_alert = np.array([evaluate.baseline_rule(registry, domain, ds.answers[i]) for i in sp.test])
        bm = evaluate.with_intervals(yt, base_alert.astype(float), 0.5, seed + d_i)
        m.update(
            {
                "baseline_auroc": bm["auroc"],
                "baseline_auroc_ci95": bm["ci95"]["auroc"],
                "baseline_sensitivity": bm["sensitivity"],
                "baseline_specificity": bm["specificity"],
                "baseline_alert_rate": bm["alert_rate"],
                "onnx_max_abs_diff": parity,
                "onnx_raw_vs_tables_max_abs_diff": float(np.abs(onnx_raw - table_raw).max()),
                "sklearn_raw_vs_tables_max_abs_diff": float(np.abs(model.decision_function(Xt) - table_raw).max()),
                "shap_max_abs_diff": shap_diff,
                "model_family": chosen["family"],
                "n_test": len(yt),
            }
        )
        metrics[domain] = m
        report["baseline"][domain] = bm
        groups = {"sex": ds.sex[sp.test], "age_band": ds.age_band[sp.test], "ethnicity": ds.ethnicity[sp.test]}
        report["audit"][domain] = evaluate.group_audit(yt, p_test, threshold, groups)
        report["curves"][domain] = {"y": yt, "p": p_test, "baseline": base_alert}
        report["importance"][domain] = {f.name: float(np.abs(phi[:, j]).mean()) for j, f in enumerate(feats)}
        onnx_file = f"{domain}.onnx"
        (out / onnx_file).write_bytes(onx.SerializeToString())
        explanations[domain] = tables_json(domain, feats, tables, model)
        domains[domain] = {
            "onnx": onnx_file,
            "features": [f.name for f in feats],
            "model_family": chosen["family"],
            "threshold": threshold,
            "base_value": tables.base_value,
        }

    write_json(out / "explanations.json", explanations)
    files = {name: sha256_file(out / name) for name in [*(f"{d}.onnx" for d in DOMAINS), "explanations.json"]}
    digest = hashlib.sha256("".join(files[k] for k in sorted(files)).encode()).hexdigest()
    manifest = {
        "format": 1,
        "version": f"{source['kind']}-s{seed}-n{len(df)}-{digest[:10]}",
        "created_by": f"python -m training train --rows {rows} --seed {seed}" + (f" --data {data.name}" if data else ""),
        "contract_hash": contract.contract_hash(),
        "encoding_version": ENCODING_VERSION,
        "feature_names": list(contract.names),
        "domains": domains,
        "explanations": "explanations.json",
        "files": files,
        "thresholds": {d: domains[d]["threshold"] for d in DOMAINS},
        "metrics": metrics,
        "model_comparison": report["comparison"],
        "group_audit": report["audit"],
        "data": source,
        "splits": {"train": len(sp.train), "validation": len(sp.val), "test": len(sp.test)},
        "library_versions": library_versions(),
    }
    cleaned: dict[str, Any] = _clean(manifest)
    write_json(out / "manifest.json", cleaned)
    card.write(out, cleaned, report, contract, plots=plots)
    return cleaned


def _clean(obj: Any) -> Any:
    """JSON has no NaN: undefined metrics (e.g. AUROC of a group with one class) become null."""
    if isinstance(obj, float):
        return None if math.isnan(obj) else obj
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj
