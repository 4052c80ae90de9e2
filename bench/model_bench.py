"""Per-screen cost of model inference against explanation, printed as a Markdown table.

    PYTHONPATH=. python bench/model_bench.py [--model models/default] [--screens 300] [--repeat 5]

Rows are synthetic screens (the project's generator, seed 2026). "ONNX inference" is the three domain
sessions run on one screen each; "exact SHAP values" is the table look-up that gives every feature's
contribution; "evaluate()" is everything the service does for a screen state it has not seen (encoding,
inference, explanation and the plain-words presentation), and "assess()" the same through the service's
memo, as when a tablet reads an unchanged screen again. The endpoint table times the assessment endpoint against the
validated screen read and the health check, in process. The `shap` TreeExplainer row is the cost the table design avoids,
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
    parser.add_argument("--requests", type=int, default=100, help="requests per endpoint timing run")
    parser.add_argument("--no-api", action="store_true", help="skip the endpoint comparison")
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

    def evaluate() -> None:
        a, age, sex = screens[pick()]
        bundle.evaluate(a, age=age, sex=sex)

    def assess() -> None:
        a, age, sex = screens[pick()]
        bundle.assess(a, age=age, sex=sex)

    rows = [
        ("encode answers to the feature vector", per_call_us(encode, args.screens, args.repeat)),
        ("ONNX inference, 3 domains", per_call_us(onnx, args.screens, args.repeat)),
        ("exact SHAP values by table look-up, 3 domains", per_call_us(shap_tables, args.screens, args.repeat)),
        ("evaluate(): all of the above plus plain-words output", per_call_us(evaluate, args.screens, args.repeat)),
        ("assess(): the same, memoised (a screen state seen before)", per_call_us(assess, args.screens, args.repeat)),
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
    if not args.no_api:
        api_rows = endpoint_costs(screens[: min(20, len(screens))], n=args.requests)
        print("\n| endpoint (in-process TestClient, SQLite, per request) | microseconds |")
        print("|---|---:|")
        for name, us in api_rows:
            print(f"| {name} | {us:,.0f} |")


Screen = tuple[dict[str, int | bool], int | None, str]


def endpoint_costs(screens: list[Screen], n: int) -> list[tuple[str, float]]:
    """The assessment endpoint against the validated screen read and the bare health check."""
    import tempfile

    from fastapi.testclient import TestClient

    from screening import migrate
    from screening.app import create_app
    from screening.auth.models import Role
    from screening.auth.service import create_user
    from screening.config import Settings
    from screening.db import make_engine, make_session_factory, unit_of_work

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(environment="test", data_dir=Path(tmp))
        engine = make_engine(settings)
        migrate.upgrade(engine)
        with unit_of_work(make_session_factory(engine)) as s:
            create_user(s, "bench", "correct horse battery staple", Role.nurse, custody_suites=["Bench"])
        engine.dispose()
        with TestClient(create_app(settings)) as client:
            tok = client.post("/api/v1/auth/token", data={"username": "bench", "password": "correct horse battery staple"})
            h = {"Authorization": f"Bearer {tok.json()['access_token']}"}
            ids: list[str] = []
            for answers, _age, sex in screens:
                body = {"custody_record": f"B/{len(ids)}", "date_of_birth": "1990-05-01", "sex": sex}
                sid = client.post("/api/v1/screens", json=body, headers=h).json()["id"]
                consent = {"screening": True, "share_with_health": True, "share_with_court": True, "capacity": "has_capacity"}
                client.put(f"/api/v1/screens/{sid}/consent", json=consent, headers=h)
                client.patch(f"/api/v1/screens/{sid}/answers", json={"answers": answers}, headers=h)
                ids.append(sid)
            k = iter(range(10**12))

            def get(path: str) -> Callable[[], object]:
                return lambda: client.get(path.format(ids[next(k) % len(ids)]), headers=h)

            return [
                ("GET /health (no auth, no database)", per_call_us(get("/health"), n, 3)),
                ("GET /api/v1/screens/{id} (auth, database, validated response)", per_call_us(get("/api/v1/screens/{}"), n, 3)),
                (
                    "GET /api/v1/screens/{id}/assessment (the above plus model, explanation, recorded row)",
                    per_call_us(get("/api/v1/screens/{}/assessment"), n, 3),
                ),
            ]


if __name__ == "__main__":
    main()
