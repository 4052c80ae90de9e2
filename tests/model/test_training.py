"""The training pipeline: SHAP agreement, ONNX parity, baselines, reproducibility, the export loader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from screening.model.features import DOMAINS, default_contract
from screening.model.service import load_model
from training.data import DataError, load_export, to_dataset
from training.export import run_onnx, shap_values, to_onnx_model
from training.models import explain
from training.pipeline import _candidate, split, train
from training.synthetic import generate

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data() -> Any:
    df = generate(2000, seed=3)
    return to_dataset(df, default_contract()), split(len(df), 3)


@pytest.mark.parametrize("family", ["glassbox", "logistic"])
def test_tables_agree_with_the_shap_package_for_the_same_model_and_background(data: Any, family: str) -> None:
    ds, sp = data
    c = default_contract()
    cand = _candidate(family, c, "mental_health", ds, sp, seed=3)
    X = ds.X[:, c.domain_index["mental_health"]][sp.test][:100]
    ours = explain(cand["tables"], cand["features"], X)
    theirs = shap_values(cand["model"], cand["features"], cand["background"], X)
    assert np.abs(ours - theirs).max() <= 1e-6
    # And both are exact: they sum to the model's own log-odds.
    np.testing.assert_allclose(cand["tables"].base_value + ours.sum(axis=1), cand["model"].decision_function(X), atol=1e-9)


def test_boosted_trees_with_interactions_are_not_additive_so_never_served(data: Any) -> None:
    ds, sp = data
    cand = _candidate("boosted", default_contract(), "learning_disability", ds, sp, seed=3)
    assert not cand["summary"]["additive"]
    assert not cand["summary"]["eligible"]


@pytest.mark.parametrize("family", ["glassbox", "logistic"])
def test_onnx_parity_with_scikit_learn(data: Any, family: str) -> None:
    ds, sp = data
    c = default_contract()
    cand = _candidate(family, c, "learning_disability", ds, sp, seed=3)
    X = ds.X[:, c.domain_index["learning_disability"]][sp.test]
    onx = to_onnx_model(cand["model"], X.shape[1], "learning_disability")
    raw, prob = run_onnx(onx, X)
    assert np.abs(prob - cand["model"].predict_proba(X)[:, 1]).max() <= 1e-5
    assert np.abs(raw - cand["model"].decision_function(X)).max() <= 1e-4


def test_manifest_records_the_pinned_metrics(small_artifact: tuple[Path, dict[str, Any]]) -> None:
    m = json.loads((small_artifact[0] / "manifest.json").read_text())
    for d in DOMAINS:
        keys = {
            "auroc",
            "baseline_auroc",
            "brier",
            "ece",
            "sensitivity",
            "specificity",
            "threshold",
            "onnx_max_abs_diff",
        }
        assert keys <= set(m["metrics"][d])
        assert m["metrics"][d]["onnx_max_abs_diff"] <= 1e-5
        assert m["metrics"][d]["shap_max_abs_diff"] <= 1e-6
        assert m["thresholds"][d] == m["metrics"][d]["threshold"]
    assert m["contract_hash"] == default_contract().contract_hash()
    assert (small_artifact[0] / "model_card.md").read_text().startswith("# Model card")


def test_every_domain_beats_its_instrument_rule_on_held_out_data(small_artifact: tuple[Path, dict[str, Any]]) -> None:
    metrics = small_artifact[1]["metrics"]
    for d in DOMAINS:
        assert metrics[d]["auroc"] > metrics[d]["baseline_auroc"], d


def test_thresholds_meet_the_sensitivity_floor_on_validation_and_report_alerts(
    small_artifact: tuple[Path, dict[str, Any]],
) -> None:
    for d in DOMAINS:
        m = small_artifact[1]["metrics"][d]
        assert 0 < m["alert_rate"] < 1
        # Chosen on validation; on test the figure is an estimate, so allow sampling noise.
        assert m["sensitivity"] >= 0.75, d


def test_same_seed_reproduces_the_artifact(small_artifact: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    data = small_artifact[1]["data"]
    again = train(tmp_path, rows=data["rows"], seed=data["seed"], plots=False)
    assert again["metrics"] == small_artifact[1]["metrics"]
    assert again["files"] == small_artifact[1]["files"]
    assert again["version"] == small_artifact[1]["version"]


def test_export_file_round_trips_through_the_loader(tmp_path: Path) -> None:
    df = generate(200, seed=11)
    df["age_band"] = ["18-24" if a < 25 else "65+" if a >= 65 else "25-64" for a in df["age"].fillna(30)]
    path = tmp_path / "export.csv"
    df.drop(columns=["age"]).to_csv(path, index=False)
    loaded = load_export(path)
    ds = to_dataset(loaded, default_contract())
    assert ds.X.shape == (200, len(default_contract().names))
    assert set(ds.y) == set(DOMAINS)
    df.drop(columns=["outcome_mental_health", "age"]).to_csv(path, index=False)
    with pytest.raises(DataError, match="outcome_mental_health"):
        load_export(path)


def test_a_model_trained_on_an_export_loads_in_the_service(tmp_path: Path) -> None:
    path = tmp_path / "export.parquet"
    generate(1000, seed=12).to_parquet(path)
    manifest = train(tmp_path / "m", rows=0, seed=12, data=path, plots=False)
    assert manifest["data"]["kind"] == "export"
    assert load_model(tmp_path / "m").version == manifest["version"]


@pytest.mark.slow
def test_retraining_the_shipped_default_reproduces_its_metrics(tmp_path: Path) -> None:
    shipped = json.loads((REPO / "models" / "default" / "manifest.json").read_text())
    rows, seed = shipped["data"]["rows"], shipped["data"]["seed"]
    again = train(tmp_path, rows=rows, seed=seed, plots=False)
    # To 1e-9, not bit for bit: a newer NumPy or scikit-learn release moves the last digit or two of a float
    # (seen: ECE 0.007676407457815124 against ...121), which no one reading the metrics could act on.
    again_flat, shipped_flat = _flat(json.loads(json.dumps(again["metrics"]))), _flat(shipped["metrics"])
    assert again_flat.keys() == shipped_flat.keys()
    for key, value in shipped_flat.items():
        assert again_flat[key] == (pytest.approx(value, rel=1e-9, abs=1e-12) if isinstance(value, float) else value), key


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{prefix}/{key}").items()}
    if isinstance(tree, list):
        return {k: v for i, sub in enumerate(tree) for k, v in _flat(sub, f"{prefix}[{i}]").items()}
    return {prefix: tree}


def test_every_age_band_the_export_writes_reads_back() -> None:
    import math

    from training.data import _band_midpoint, age_band

    for age in (12, 17, 18, 25, 26, 40, 41, 55, 56, 80):
        band = age_band(age)
        mid = _band_midpoint(band)
        assert age_band(mid) == band, (age, band, mid)
    assert math.isnan(_band_midpoint("unknown"))


def test_unlabelled_export_rows_are_left_out(tmp_path: Path) -> None:
    df = generate(100, seed=13)
    df.loc[:39, "outcome_substance_misuse"] = None
    ds = to_dataset(df, default_contract())
    assert ds.X.shape[0] == 60
    df["outcome_mental_health"] = None
    with pytest.raises(DataError, match="nothing to train on"):
        to_dataset(df, default_contract())
