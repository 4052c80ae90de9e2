"""``python -m training train|external-check``: the data scientist's entry point."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train, evaluate, audit and export the three domain models")
    t.add_argument("--rows", type=int, default=20000, help="synthetic screens to generate (ignored with --data)")
    t.add_argument("--seed", type=int, default=20260101)
    t.add_argument("--out", type=Path, required=True, help="artifact folder to write")
    t.add_argument("--data", type=Path, default=None, help="an export CSV/parquet with recorded outcomes")
    t.add_argument("--no-plots", action="store_true", help="skip the PNG plots (tests)")
    e = sub.add_parser("external-check", help="run the pipeline on real data shipped offline")
    e.add_argument("dataset", choices=["nhanes", "help"])
    e.add_argument("--seed", type=int, default=20260101)
    e.add_argument("--out", type=Path, default=Path("reports/external"), help="folder for the results JSON/Markdown")
    e.add_argument("--card", type=Path, default=None, help="a model_card.md to receive every report in --out")
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    # Single-threaded like `train()` itself, for the external check too (see training.pipeline).
    threadpool_limits(1)
    if args.command == "train":
        from training.pipeline import train

        manifest = train(args.out, rows=args.rows, seed=args.seed, data=args.data, plots=not args.no_plots)
        summary = {
            d: {
                k: m[k]
                for k in (
                    "model_family",
                    "auroc",
                    "baseline_auroc",
                    "brier",
                    "ece",
                    "sensitivity",
                    "specificity",
                    "alert_rate",
                    "threshold",
                    "onnx_max_abs_diff",
                    "shap_max_abs_diff",
                )
            }
            for d, m in manifest["metrics"].items()
        }
        print(json.dumps({"version": manifest["version"], "out": str(args.out), "metrics": summary}, indent=2))
    else:
        from training.external import run

        result = run(args.dataset, out=args.out, seed=args.seed, card=args.card)
        print(result["markdown"])
    print(f"done in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
