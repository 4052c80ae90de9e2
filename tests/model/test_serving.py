"""Loading and verifying artifacts, and the shape and arithmetic of an assessment."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from screening.model.exceptions import ModelMismatchError
from screening.model.features import DOMAINS, default_contract
from screening.model.service import ModelBundle, load_model
from training.data import to_dataset
from training.synthetic import generate

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def artifact_copy(small_artifact: tuple[Path, dict[str, Any]], tmp_path: Path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(small_artifact[0], dst)
    return dst


def _rewrite_manifest(path: Path, **changes: Any) -> None:
    m = json.loads((path / "manifest.json").read_text())
    m.update(changes)
    (path / "manifest.json").write_text(json.dumps(m))


class TestLoad:
    def test_verified_artifact_loads(self, bundle: ModelBundle, small_artifact: tuple[Path, dict[str, Any]]) -> None:
        assert bundle.version == small_artifact[1]["version"]
        assert len(bundle.sha256) == 64
        assert set(bundle.thresholds) == set(DOMAINS)

    def test_tampered_onnx_file_is_refused(self, artifact_copy: Path) -> None:
        with (artifact_copy / "mental_health.onnx").open("ab") as f:
            f.write(b"\0")
        with pytest.raises(ModelMismatchError, match=r"sha256 of mental_health\.onnx"):
            load_model(artifact_copy)

    def test_tampered_explanation_tables_are_refused(self, artifact_copy: Path) -> None:
        p = artifact_copy / "explanations.json"
        p.write_text(p.read_text() + " ")
        with pytest.raises(ModelMismatchError, match=r"sha256 of explanations\.json"):
            load_model(artifact_copy)

    def test_wrong_contract_hash_is_refused(self, artifact_copy: Path) -> None:
        _rewrite_manifest(artifact_copy, contract_hash="0" * 64)
        with pytest.raises(ModelMismatchError, match="feature contract hash 000000000000"):
            load_model(artifact_copy)

    def test_different_feature_names_are_refused_naming_the_difference(self, artifact_copy: Path) -> None:
        names = list(default_contract().names)
        _rewrite_manifest(artifact_copy, feature_names=[*names[:-1], "shoe_size"])
        with pytest.raises(ModelMismatchError, match=r"only in model: \['shoe_size'\]"):
            load_model(artifact_copy)

    def test_missing_manifest_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ModelMismatchError, match=r"no manifest\.json"):
            load_model(tmp_path)

    def test_a_file_without_a_recorded_sha256_is_refused(self, artifact_copy: Path) -> None:
        m = json.loads((artifact_copy / "manifest.json").read_text())
        del m["files"]["explanations.json"]
        (artifact_copy / "manifest.json").write_text(json.dumps(m))
        with pytest.raises(ModelMismatchError, match="without a sha256"):
            load_model(artifact_copy)

    def test_the_shipped_default_model_verifies(self) -> None:
        b = load_model(REPO / "models" / "default")
        assert b.manifest["data"]["kind"] == "synthetic"


def test_service_package_never_imports_training_libraries() -> None:
    code = (
        "import sys, screening.model.service as s, screening.model.features;"
        "bad = sorted({m.split('.')[0] for m in sys.modules}"
        " & {'sklearn', 'skl2onnx', 'shap', 'training', 'pandas', 'joblib', 'cloudpickle'});"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == ""


@pytest.fixture(scope="module")
def screens() -> list[tuple[dict[str, int | bool], int | None, str]]:
    df = generate(300, seed=99)
    ds = to_dataset(df, default_contract())
    ages = df["age"].to_numpy()
    return [(a, None if np.isnan(age) else int(age), s) for a, age, s in zip(ds.answers, ages, ds.sex, strict=True)]


class TestAssess:
    def test_pinned_shape(self, bundle: ModelBundle) -> None:
        res = bundle.assess({"bjmhs_8": True, "phq9_2": 3}, age=30, sex="female")
        assert set(res) == set(DOMAINS)
        d = res["mental_health"].to_dict()
        assert set(d) == {
            "probability",
            "raw_score",
            "base_value",
            "threshold",
            "needs_assessment",
            "contributions",
            "missing",
            "answered",
        }
        assert set(d["contributions"][0]) == {"feature", "label", "value", "contribution"}
        hosp = next(c for c in d["contributions"] if c["feature"] == "bjmhs_8")
        assert hosp["value"] == "yes"
        assert hosp["label"].startswith("Has been in hospital for mental health")
        mags = [abs(c["contribution"]) for c in d["contributions"]]
        assert mags == sorted(mags, reverse=True)
        assert all(c["contribution"] != 0 for c in d["contributions"])

    def test_additivity_and_agreement_with_onnx_on_many_screens(self, bundle: ModelBundle, screens: list[Any]) -> None:
        worst_add, worst_onnx = 0.0, 0.0
        for answers, age, sex in screens:
            x = bundle.contract.encode(answers, age=age, sex=sex).astype(np.float32)
            for name, a in bundle.assess(answers, age=age, sex=sex).items():
                total = a.base_value + sum(c.contribution for c in a.contributions)
                worst_add = max(worst_add, abs(total - a.raw_score))
                dom = bundle._domains[name]
                raw_onnx, prob = dom.run(x[dom.index])
                worst_onnx = max(worst_onnx, abs(raw_onnx - a.raw_score))
                assert prob == a.probability
                assert 0.0 <= a.probability <= 1.0
                assert a.needs_assessment == (a.probability >= a.threshold)
        assert worst_add <= 1e-6
        # float32 ONNX against float64 tables; the measured figure is recorded in the manifest.
        assert worst_onnx <= 1e-4

    def test_partial_screen_reports_what_is_missing_but_not_skipped_items(self, bundle: ModelBundle) -> None:
        answers = {f"phq9_{i}": 1 for i in range(1, 10)} | {"audit_1": 1, "audit_2": 0, "audit_3": 0}
        res = bundle.assess(answers, age=None, sex=None)
        mh_missing = {m.item for m in res["mental_health"].missing}
        assert "gad7_1" in mh_missing and "bjmhs_8" in mh_missing
        assert not any(m.startswith("phq9_") for m in mh_missing)
        sm_missing = {m.item for m in res["substance_misuse"].missing}
        assert "dast10_1" in sm_missing
        assert not sm_missing & {f"audit_{i}" for i in range(4, 11)}, "items skip logic did not ask are not missing"
        values = {c.feature: c.value for c in res["substance_misuse"].contributions}
        assert values.get("audit_4", "not asked") == "not asked"
        # The domain's own answered questions are counted, so a page can tell an unasked domain apart.
        assert res["mental_health"].answered == 9
        assert res["substance_misuse"].answered == 3
        assert res["learning_disability"].answered == 0
        assert {m.item for m in res["learning_disability"].missing} >= {"ldc_special_school"}

    def test_empty_screen_is_scored(self, bundle: ModelBundle) -> None:
        res = bundle.assess({}, age=None, sex=None)
        for a in res.values():
            assert 0.0 <= a.probability <= 1.0
            assert len(a.missing) > 0
