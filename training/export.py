"""ONNX export with the calibration folded into the graph, parity and SHAP checks, the manifest."""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from skl2onnx import to_onnx
from sklearn.pipeline import Pipeline

from screening.model.features import Feature
from training.models import PlattCalibrated, Tables, final_step

OPSET = 17


def to_onnx_model(model: PlattCalibrated, n_features: int, name: str) -> onnx.ModelProto:
    """The fitted model as ONNX with two outputs, ``raw_score`` (calibrated log-odds) and ``probability``.

    skl2onnx is asked for raw scores; the Platt step is appended as Mul/Add/Sigmoid so that the
    service reads the same log-odds that the explanation tables sum to.
    """
    base = model.estimator
    if isinstance(base, Pipeline):
        onx, scores, col = _logistic_graph(base, n_features)
    else:
        x0 = np.zeros((1, n_features), dtype=np.float32)
        onx = to_onnx(
            base,
            x0,
            options={id(final_step(base)): {"zipmap": False, "raw_scores": True}},
            target_opset=OPSET,
        )
        scores = next(o.name for o in onx.graph.output if o.name != "label")
        # Binary raw scores come as [-s, s]: column 1 is the positive class's log-odds.
        col = 1
    g = onx.graph
    g.initializer.extend(
        [
            helper.make_tensor("platt_col", TensorProto.INT64, [1], [col]),
            helper.make_tensor("platt_a", TensorProto.FLOAT, [], [model.a_]),
            helper.make_tensor("platt_b", TensorProto.FLOAT, [], [model.b_]),
            helper.make_tensor("platt_shape", TensorProto.INT64, [1], [-1]),
        ]
    )
    g.node.extend(
        [
            helper.make_node("Gather", [scores, "platt_col"], ["platt_s"], axis=1),
            helper.make_node("Reshape", ["platt_s", "platt_shape"], ["platt_flat"]),
            helper.make_node("Mul", ["platt_flat", "platt_a"], ["platt_scaled"]),
            helper.make_node("Add", ["platt_scaled", "platt_b"], ["raw_score"]),
            helper.make_node("Sigmoid", ["raw_score"], ["probability"]),
        ]
    )
    del g.output[:]
    g.output.extend(
        [
            helper.make_tensor_value_info("raw_score", TensorProto.FLOAT, [None]),
            helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None]),
        ]
    )
    g.name = name
    onx.doc_string = f"screening model for {name}: outputs calibrated log-odds and probability"
    onnx.checker.check_model(onx)
    return onx


def _logistic_graph(pipe: Pipeline, n_features: int) -> tuple[onnx.ModelProto, str, int]:
    """The imputer + indicator + scaler + logistic pipeline written out as ONNX operators.

    skl2onnx's SimpleImputer converter drops ``add_indicator`` columns and it has no MissingIndicator
    converter, so the pipeline is expressed directly: IsNaN, Where (median), scale, MatMul.
    """
    imputer, scaler, clf = pipe.named_steps["impute"], pipe.named_steps["scale"], pipe.named_steps["clf"]
    w = clf.coef_[0]
    mean, scale = scaler.mean_, scaler.scale_
    ind = list(imputer.indicator_.features_) if imputer.indicator_ is not None else []
    d = n_features
    w_value = w[:d] / scale[:d]
    w_ind = np.zeros(d)
    ind_offset = np.zeros(d)
    for k, j in enumerate(ind):
        w_ind[j] = w[d + k] / scale[d + k]
        ind_offset[j] = w[d + k] * mean[d + k] / scale[d + k]
    bias = float(clf.intercept_[0] - np.sum(w[:d] * mean[:d] / scale[:d]) - ind_offset.sum())

    def f32(name: str, arr: np.ndarray) -> onnx.TensorProto:
        a = np.asarray(arr, dtype=np.float32)
        return helper.make_tensor(name, TensorProto.FLOAT, list(a.shape), a.ravel().tolist())

    nodes = [
        helper.make_node("IsNaN", ["X"], ["lr_isnan"]),
        helper.make_node("Where", ["lr_isnan", "lr_median", "X"], ["lr_imputed"]),
        helper.make_node("Cast", ["lr_isnan"], ["lr_ind"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["lr_imputed", "lr_w_value"], ["lr_a"]),
        helper.make_node("MatMul", ["lr_ind", "lr_w_ind"], ["lr_b"]),
        helper.make_node("Add", ["lr_a", "lr_b"], ["lr_ab"]),
        helper.make_node("Add", ["lr_ab", "lr_bias"], ["lr_raw"]),
    ]
    graph = helper.make_graph(
        nodes,
        "logistic",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, d])],
        [helper.make_tensor_value_info("lr_raw", TensorProto.FLOAT, [None, 1])],
        [
            f32("lr_median", imputer.statistics_),
            f32("lr_w_value", w_value.reshape(d, 1)),
            f32("lr_w_ind", w_ind.reshape(d, 1)),
            f32("lr_bias", np.array([bias])),
        ],
    )
    onx = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    return onx, "lr_raw", 0


def run_onnx(onx: onnx.ModelProto, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(onx.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    raw, prob = sess.run(["raw_score", "probability"], {sess.get_inputs()[0].name: X.astype(np.float32)})
    return raw.astype(np.float64), prob.astype(np.float64)


def shap_values(model: PlattCalibrated, features: list[Feature], background: np.ndarray, X: np.ndarray) -> np.ndarray:
    """SHAP values from the `shap` package in calibrated log-odds, one column per contract feature.

    Boosted trees: TreeExplainer with the interventional background. Logistic regression:
    LinearExplainer on the transformed columns, each feature's value and missing-indicator columns
    summed back to the feature they came from.
    """
    import shap

    base = model.estimator
    if isinstance(base, Pipeline):
        pre = base[:-1]
        clf = base[-1]
        zb, zx = pre.transform(background), pre.transform(X)
        phi_z = shap.LinearExplainer(clf, shap.maskers.Independent(zb, max_samples=len(zb))).shap_values(zx)
        imputer = base.named_steps["impute"]
        phi = phi_z[:, : len(features)].copy()
        if imputer.indicator_ is not None:
            for k, j in enumerate(imputer.indicator_.features_):
                phi[:, j] += phi_z[:, len(features) + k]
        return np.asarray(model.a_ * phi, dtype=np.float64)
    # An Independent masker keeps every background row; passing `data=` would silently subsample it
    # to 100 rows, and the base values would then differ from the tables'.
    masker = shap.maskers.Independent(background, max_samples=len(background))
    explainer = shap.TreeExplainer(base, masker, feature_perturbation="interventional", model_output="raw")
    return np.asarray(model.a_ * np.asarray(explainer.shap_values(X, check_additivity=True)), dtype=np.float64)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tables_json(domain: str, features: list[Feature], t: Tables, model: PlattCalibrated) -> dict[str, Any]:
    return {
        "domain": domain,
        "space": "calibrated log-odds",
        "base_value": t.base_value,
        "calibration": {"a": model.a_, "b": model.b_},
        "features": [
            {"name": f.name, "values": list(f.values), "contributions": [float(v) for v in tab]}
            for f, tab in zip(features, t.tables, strict=True)
        ],
    }


def library_versions() -> dict[str, str]:
    import fairlearn
    import shap
    import skl2onnx
    import sklearn

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "shap": shap.__version__,
        "fairlearn": fairlearn.__version__,
    }


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
