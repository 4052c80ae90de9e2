"""Costs measured inside one process, without HTTP: model load, inference and explanation per screen."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = (
    {f"phq9_{i}": 1 for i in range(1, 10)}
    | {f"gad7_{i}": 1 for i in range(1, 8)}
    | {f"bjmhs_{i}": i in (1, 3) for i in range(1, 9)}
    | {f"audit_{i}": 1 for i in range(1, 11)}
    | {f"dast10_{i}": i in (1, 2) for i in range(1, 11)}
    | {"risk_past_attempt": True, "ldc_reading_help": True, "social_housing": True}
)


def measure_all(notes: list[str]) -> list[tuple[str, str, str, str]]:
    """(what, figure, goal, met) rows for the results table."""
    try:
        from screening.model.service import load_model
    except ImportError:
        notes.append("Model inference and explanation: not measured (the model is not in this build).")
        return []
    model_dir = next((d for d in (ROOT / "models").glob("*") if (d / "manifest.json").exists()), None)
    if model_dir is None:
        notes.append("Model inference and explanation: not measured (no model artifact under models/).")
        return []
    t0 = time.perf_counter()
    bundle = load_model(model_dir)
    load_s = time.perf_counter() - t0
    for _ in range(50):  # warm-up: ONNX Runtime allocates on the first runs
        bundle.assess(ANSWERS, age=35, sex="male")
    samples = []
    for _ in range(500):
        t0 = time.perf_counter()
        result = bundle.assess(ANSWERS, age=35, sex="male")
        samples.append(time.perf_counter() - t0)
    samples.sort()
    p50, p99 = statistics.median(samples) * 1000, samples[int(len(samples) * 0.99)] * 1000
    return [
        (f"model load and verification ({model_dir.name}, {bundle.version})", f"{load_s * 1000:.0f} ms", "", ""),
        (f"model inference + exact explanation, {len(result)} domains, per screen (p50 / p99 of 500)",
         f"{p50:.2f} / {p99:.2f} ms", "", ""),
    ]
