"""Loading a verified model artifact and assessing a screen with exact explanations.

An artifact is a folder written by ``python -m training train``: one ONNX file per domain, an
``explanations.json`` with each domain's additive contribution tables, and ``manifest.json`` naming
every file with its sha256, the feature contract hash and the feature names in order. `load_model`
refuses anything that does not match this code, and never unpickles anything.

Per screen, the ONNX model gives the probability (the authoritative output) and the tables give the
explanation: for an additive model, the exact interventional SHAP value of each feature is a table
look-up, so ``base_value + sum(contributions) == raw_score`` holds to float64 rounding and costs a
few microseconds instead of a tree-SHAP pass.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import onnxruntime as ort

from screening.model.exceptions import ModelMismatchError
from screening.model.features import DOMAINS, AnswerValue, FeatureContract, default_contract

MANIFEST = "manifest.json"
SUPPORTED_FORMAT = 1

# float32 inference against float64 tables: measured at export (manifest metrics
# `onnx_raw_vs_tables_max_abs_diff`, about 1e-6 on log-odds); 1e-4 leaves room for other CPUs while
# still catching a table that does not belong to its model.
RAW_AGREEMENT_TOL = 1e-4
# Distinct (answers, age, sex) assessments remembered per loaded artifact and process: ~16 KB each, and as many
# response bodies (~20 KB each, screening.model.assessments), so 256 of each bound them to ~9 MB a worker.
MEMO_SIZE = 256


@dataclass(frozen=True, slots=True)
class Contribution:
    feature: str
    label: str
    value: str
    contribution: float


@dataclass(frozen=True, slots=True)
class MissingItem:
    item: str
    label: str


@dataclass(frozen=True, slots=True)
class DomainAssessment:
    probability: float
    raw_score: float
    base_value: float
    threshold: float
    needs_assessment: bool
    contributions: tuple[Contribution, ...]
    missing: tuple[MissingItem, ...]
    # How many of the domain's own questions were answered: with none, the probability rests on the
    # values imputed for "not answered" alone, and a page should say so rather than suggest a referral.
    answered: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "probability": self.probability,
            "raw_score": self.raw_score,
            "base_value": self.base_value,
            "threshold": self.threshold,
            "needs_assessment": self.needs_assessment,
            "contributions": [
                {"feature": c.feature, "label": c.label, "value": c.value, "contribution": c.contribution}
                for c in self.contributions
            ],
            "missing": [{"item": m.item, "label": m.label} for m in self.missing],
            "answered": self.answered,
        }


@dataclass
class _Domain:
    name: str
    session: ort.InferenceSession
    input_name: str
    features: tuple[str, ...]
    index: np.ndarray
    threshold: float
    base_value: float
    flat: np.ndarray  # every feature's table, concatenated
    offsets: np.ndarray  # start of each feature's table in `flat`
    item_features: list[tuple[int, str]] = field(default_factory=list)
    labels: tuple[str, ...] = ()

    def run(self, x: np.ndarray) -> tuple[float, float]:
        raw, prob = self.session.run(["raw_score", "probability"], {self.input_name: x.reshape(1, -1)})
        return float(raw[0]), float(prob[0])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    # One screen at a time: threads cost more to wake than a 100-tree ensemble costs to evaluate.
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class ModelBundle:
    """A verified artifact: three domain models and their explanation tables."""

    def __init__(self, path: Path, manifest: dict[str, Any], sha256: str, contract: FeatureContract) -> None:
        self.path = path
        self.manifest = manifest
        self.sha256 = sha256
        self.version: str = manifest["version"]
        self.contract = contract
        self._domains: dict[str, _Domain] = {}
        self._memo = lru_cache(maxsize=MEMO_SIZE)(self._evaluate_key)
        # Memos of views derived from this artifact's outputs (an API body, say): kept and dropped with it.
        self.derived: dict[str, Any] = {}

    @property
    def thresholds(self) -> dict[str, float]:
        return {d: dom.threshold for d, dom in self._domains.items()}

    def assess(
        self, answers: Mapping[str, AnswerValue], *, age: int | None, sex: str | None
    ) -> Mapping[str, DomainAssessment]:
        """Probability, threshold decision and exact explanation for each domain (memoised: do not mutate).

        The result is a pure function of the answers, age and sex under this artifact, so it is remembered:
        a tablet reads an assessment again and again between answer changes.
        """
        # Item types are fixed by the contract and answers are validated, so True and 1 never meet in a key.
        return self._memo(frozenset(answers.items()), age, sex)

    def _evaluate_key(self, answers: frozenset[tuple[str, AnswerValue]], age: int | None,
                      sex: str | None) -> Mapping[str, DomainAssessment]:
        return MappingProxyType(self.evaluate(dict(answers), age=age, sex=sex))

    def evaluate(self, answers: Mapping[str, AnswerValue], *, age: int | None, sex: str | None) -> dict[str, DomainAssessment]:
        """`assess` without the memo: runs the ONNX models and builds the explanations every time."""
        c = self.contract
        x = c.encode(answers, age=age, sex=sex)
        x32 = x.astype(np.float32)
        unasked = c.unasked(answers)
        out: dict[str, DomainAssessment] = {}
        for name, dom in self._domains.items():
            xd = x[dom.index]
            raw_onnx, prob = dom.run(x32[dom.index])
            contrib = dom.flat[dom.offsets + c.slots(name, xd)]
            raw = dom.base_value + float(contrib.sum())
            if abs(raw - raw_onnx) > RAW_AGREEMENT_TOL:
                raise ModelMismatchError(
                    f"{self.version} {name}: explanation gives log-odds {raw:.6f} but the ONNX model "
                    f"{raw_onnx:.6f}; the artifact's tables do not belong to its model"
                )
            # Plain Python lists from here: per-element numpy scalar access costs more than the maths.
            cl, xl, feats, labels = contrib.tolist(), xd.tolist(), dom.features, dom.labels
            display = c.display_value
            contributions = tuple(
                Contribution(feats[j], labels[j], display(feats[j], answers, xl[j], unasked), cl[j])
                for j in np.argsort(-np.abs(contrib), kind="stable").tolist()
                if cl[j] != 0.0
            )
            missing = tuple(
                MissingItem(item_id, c.by_name[item_id].label)
                for _, item_id in dom.item_features
                if item_id not in answers and item_id not in unasked
            )
            out[name] = DomainAssessment(
                probability=prob,
                raw_score=raw,
                base_value=dom.base_value,
                threshold=dom.threshold,
                needs_assessment=prob >= dom.threshold,
                contributions=contributions,
                missing=missing,
                answered=sum(1 for _, item_id in dom.item_features if item_id in answers),
            )
        return out


def _fail(model_dir: Path, what: str) -> ModelMismatchError:
    return ModelMismatchError(f"model at {model_dir} refused: {what}")


def load_model(model_dir: Path, contract: FeatureContract | None = None) -> ModelBundle:
    """Read and verify an artifact; raise `ModelMismatchError` naming what differs."""
    contract = contract or default_contract()
    manifest_path = model_dir / MANIFEST
    if not manifest_path.is_file():
        raise _fail(model_dir, f"no {MANIFEST}")
    raw_manifest = manifest_path.read_bytes()
    try:
        manifest = json.loads(raw_manifest)
    except json.JSONDecodeError as exc:
        raise _fail(model_dir, f"{MANIFEST} is not valid JSON ({exc})") from exc
    if manifest.get("format") != SUPPORTED_FORMAT:
        raise _fail(model_dir, f"manifest format {manifest.get('format')!r}, this code reads {SUPPORTED_FORMAT}")

    names = list(contract.names)
    got_names = manifest.get("feature_names")
    if got_names != names:
        only_model = [n for n in got_names or [] if n not in names]
        only_code = [n for n in names if n not in (got_names or [])]
        detail = f"only in model: {only_model}; only in code: {only_code}" if only_model or only_code else "order differs"
        raise _fail(model_dir, f"feature names differ from the code's contract ({detail})")
    if manifest.get("contract_hash") != contract.contract_hash():
        raise _fail(
            model_dir,
            f"feature contract hash {str(manifest.get('contract_hash'))[:12]} (encoding "
            f"{manifest.get('encoding_version')}) does not match this code's {contract.contract_hash()[:12]}",
        )

    files: dict[str, str] = manifest.get("files") or {}
    for fname, expected in files.items():
        fpath = model_dir / fname
        if fpath.name != fname or not fpath.is_file():
            raise _fail(model_dir, f"file {fname} named in the manifest is missing")
        actual = _sha256(fpath)
        if actual != expected:
            raise _fail(model_dir, f"sha256 of {fname} is {actual[:12]}..., manifest says {expected[:12]}...")
    explanations_file = manifest.get("explanations")
    needed = {manifest["domains"][d]["onnx"] for d in DOMAINS if d in manifest.get("domains", {})}
    needed.add(explanations_file)
    unverified = sorted(n for n in needed if n not in files)
    if unverified:
        raise _fail(model_dir, f"files without a sha256 in the manifest: {unverified}")

    explanations = json.loads((model_dir / explanations_file).read_text(encoding="utf-8"))
    bundle = ModelBundle(model_dir, manifest, hashlib.sha256(raw_manifest).hexdigest(), contract)
    for d in DOMAINS:
        spec = manifest["domains"].get(d)
        if spec is None:
            raise _fail(model_dir, f"no model for domain {d}")
        feats = contract.domain_features[d]
        if tuple(spec["features"]) != feats:
            raise _fail(model_dir, f"{d}: feature list differs from the code's contract")
        tab = explanations[d]
        tables = []
        for name, entry in zip(feats, tab["features"], strict=True):
            f = contract.by_name[name]
            if entry["name"] != name or entry["values"] != list(f.values) or len(entry["contributions"]) != f.n_slots:
                raise _fail(model_dir, f"{d}: explanation table for {name} does not fit the contract")
            tables.append(np.asarray(entry["contributions"], dtype=np.float64))
        session = _session(model_dir / spec["onnx"])
        inp = session.get_inputs()[0]
        if inp.shape[-1] != len(feats):
            raise _fail(model_dir, f"{d}: ONNX input has {inp.shape[-1]} features, contract has {len(feats)}")
        lengths = np.array([len(t) for t in tables])
        dom = _Domain(
            name=d,
            session=session,
            input_name=inp.name,
            features=feats,
            index=contract.domain_index[d],
            threshold=float(spec["threshold"]),
            base_value=float(tab["base_value"]),
            flat=np.concatenate(tables),
            offsets=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.intp),
            item_features=[(j, n) for j, n in enumerate(feats) if contract.by_name[n].kind == "item"],
            labels=tuple(contract.by_name[n].label for n in feats),
        )
        if not 0.0 <= dom.threshold <= 1.0 or not math.isfinite(dom.base_value):
            raise _fail(model_dir, f"{d}: threshold or base value out of range")
        bundle._domains[d] = dom
    # A screen with nothing answered exercises every table's missing slot against the ONNX graph.
    bundle.evaluate({}, age=None, sex=None)
    return bundle
