"""Per-screen cost of model inference against explanation, printed as a Markdown table.

    PYTHONPATH=. python bench/model_bench.py [--model models/default] [--screens 300] [--repeat 5]

Rows are synthetic screens (the project's generator, seed 2026). "ONNX inference" is the three domain
sessions run on one screen each; "exact SHAP values" is the table look-up that gives every feature's
contribution; "assess()" is everything the service does per screen (encoding, inference, explanation
and the plain-words presentation). The `shap` TreeExplainer row is the cost the table design avoids,
measured on an equivalent glass-box model trained here (it cannot read ONNX).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from screening.model.features import DOMAINS, default_contract
from screening.model.service import load_model


def per_call_us(fn: Callable[[], object], n: int, repeat: int) -> float:
    """Median over `repeat` runs of the mean time per call, in microseconds."""
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--screens", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from training.data import to_dataset
    from training.synthetic import generate

    contract = default_contract()
    bundle = load_model(args.model)
    df = generate(args.screens, seed=2026)
    ds = to_dataset(df, contract)
    ages = [None if np.isnan(a) else int(a) for a in df["age"]]
    screens = list(zip(ds.answers, ages, ds.sex, strict=True))
    X = ds.X
    doms = [bundle._domains[d] for d in DOMAINS]
    it = iter(range(10**12))

    def pick() -> int:
        return next(it) % len(screens)

    def encode() -> None:
        a, age, sex = screens[pick()]
        contract.encode(a, age=age, sex=sex)

    def onnx() -> None:
        x = X[pick()].astype(np.float32)
        for dom in doms:
            dom.run(x[dom.index])

    def shap_tables() -> None:
        x = X[pick()]
        for dom in doms:
            xd = x[dom.index]
            contrib = dom.flat[dom.offsets + contract.slots(dom.name, xd)]
            float(contrib.sum())

    def assess() -> None:
        a, age, sex = screens[pick()]
        bundle.assess(a, age=age, sex=sex)

    rows = [
        ("encode answers to the feature vector", per_call_us(encode, args.screens, args.repeat)),
        ("ONNX inference, 3 domains", per_call_us(onnx, args.screens, args.repeat)),
        ("exact SHAP values by table look-up, 3 domains", per_call_us(shap_tables, args.screens, args.repeat)),
        ("assess(): all of the above plus plain-words output", per_call_us(assess, args.screens, args.repeat)),
    ]

    import shap

    from training.pipeline import _candidate, split

    train_df = generate(3000, seed=2026)
    tds = to_dataset(train_df, contract)
    cand = _candidate("glassbox", contract, "mental_health", tds, split(len(train_df), 2026), seed=2026)
    masker = shap.maskers.Independent(cand["background"][:100], max_samples=100)
    explainer = shap.TreeExplainer(cand["model"].estimator, masker, feature_perturbation="interventional")
    Xm = X[:, contract.domain_index["mental_health"]]
    n_shap = min(50, args.screens)
    shap_us = per_call_us(lambda: explainer.shap_values(Xm[[pick()]]), n_shap, 3)
    rows.append(("reference: shap TreeExplainer (interventional, 100 background rows), 1 domain", shap_us))

    onnx_us = rows[1][1]
    print(f"Model `{bundle.version}`, {args.screens} synthetic screens, median of {args.repeat} runs.\n")
    print("| step (per screen) | microseconds | relative to ONNX inference |")
    print("|---|---:|---:|")
    for name, us in rows:
        print(f"| {name} | {us:,.1f} | {us / onnx_us:.2f}x |")


if __name__ == "__main__":
    main()
