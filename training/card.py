"""The model card (Mitchell et al. 2019, "Model Cards for Model Reporting") with its PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from screening.model.features import DOMAINS, FeatureContract

TITLES = {
    "mental_health": "Mental health",
    "learning_disability": "Learning disability",
    "substance_misuse": "Substance misuse",
}


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "n/a"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _ci(m: dict[str, Any], key: str) -> str:
    lo, hi = m["ci95"][key]
    return f"{_fmt(m[key])} ({_fmt(lo)}-{_fmt(hi)})"


def _plots(out: Path, report: dict[str, Any], contract: FeatureContract) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import roc_curve

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, d in zip(axes, DOMAINS, strict=True):
        c = report["curves"][d]
        fpr, tpr, _ = roc_curve(c["y"], c["p"])
        ax.plot(fpr, tpr, label="model")
        b = c["baseline"]
        y = c["y"]
        ax.scatter([b[y == 0].mean()], [b[y == 1].mean()], color="C3", zorder=3, label="instrument rule")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.5)
        ax.set(title=TITLES[d], xlabel="false positive rate", ylabel="sensitivity")
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "roc.png", dpi=80)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, d in zip(axes, DOMAINS, strict=True):
        c = report["curves"][d]
        frac, mean = calibration_curve(c["y"], c["p"], n_bins=10, strategy="quantile")
        ax.plot(mean, frac, marker="o")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.5)
        ax.set(title=TITLES[d], xlabel="predicted probability", ylabel="observed rate")
    fig.tight_layout()
    fig.savefig(out / "calibration.png", dpi=80)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    for ax, d in zip(axes, DOMAINS, strict=True):
        imp = sorted(report["importance"][d].items(), key=lambda kv: kv[1])[-12:]
        ax.barh([contract.by_name[k].label[:45] for k, _ in imp], [v for _, v in imp])
        ax.set(title=TITLES[d], xlabel="mean |contribution| (log-odds)")
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(out / "importance.png", dpi=80)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, d in zip(axes, DOMAINS, strict=True):
        labels, sens, err = [], [], []
        for attr in ("sex", "age_band", "ethnicity"):
            for g, row in report["audit"][d][attr]["groups"].items():
                if row["n"] < 20 or np.isnan(row["sensitivity"]):
                    continue
                labels.append(f"{attr}: {g}")
                sens.append(row["sensitivity"])
                lo, hi = row["sensitivity_ci95"]
                err.append([max(0.0, row["sensitivity"] - lo), max(0.0, hi - row["sensitivity"])])
        ax.barh(labels, sens, xerr=np.array(err).T if err else None, color="C2")
        ax.axvline(0.85, color="C3", lw=1)
        ax.set(title=TITLES[d], xlabel="sensitivity at threshold (95% Wilson CI)", xlim=(0, 1))
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(out / "groups.png", dpi=80)
    plt.close(fig)


def write(out: Path, manifest: dict[str, Any], report: dict[str, Any], contract: FeatureContract, *, plots: bool) -> None:
    if plots:
        _plots(out, report, contract)
    data = manifest["data"]
    lines = [
        f"# Model card: L&D screening decision support, version `{manifest['version']}`",
        "",
        f"Made by `{manifest['created_by']}`. Contract hash `{manifest['contract_hash'][:16]}...`,"
        f" data fingerprint `{data['fingerprint'][:16]}...`.",
        "",
        "## Model details",
        "",
        "Three binary classifiers, one per need domain, each giving a calibrated probability that a full"
        " assessment will find the need. Candidates (regularised logistic regression, boosted trees with"
        " interactions, boosted single-feature trees) were compared on the same split; only additive models"
        " (exact explanations) that never lower a probability when an answer becomes more severe may be"
        " served. Among those, the lowest validation log-loss wins (simpler family on near-ties), then Platt"
        " calibration on the validation split. Explanations are exact interventional SHAP values in"
        " calibrated log-odds, served from look-up tables checked against the `shap` package at export.",
        "",
        "| domain | family served | threshold | features |",
        "|---|---|---|---|",
    ]
    for d in DOMAINS:
        dm = manifest["domains"][d]
        lines.append(f"| {TITLES[d]} | {dm['model_family']} | {dm['threshold']:.3f} | {len(dm['features'])} |")
    lines += [
        "",
        "## Intended use",
        "",
        "Needs triage in police custody and courts by liaison and diversion practitioners: which people"
        " should be offered a full mental health, learning disability or substance misuse assessment. The"
        " practitioner decides; the model's answers-based explanation lets them check its reasons. **Out of"
        " scope:** any judgement of risk of reoffending, charging or sentencing (DOMAIN.md section 5), and"
        " use without the practitioner seeing the answers.",
        "",
        "## Factors",
        "",
        "Groups audited: recorded sex, age band (under 18, 18-25, 26-40, 41-55, 56+) and self-defined"
        " ethnicity. Ethnicity is never an input. Answers come from screens that may be partial; AUDIT"
        " items 4-10 are skipped by design when AUDIT-C is below 5.",
        "",
        "## Metrics",
        "",
        "AUROC, AUPRC, Brier score and expected calibration error (10 equal-width bins) on the held-out"
        " test split with 95% bootstrap intervals (200 resamples); sensitivity, specificity and alert rate at"
        " the threshold. Thresholds are chosen on the validation split as the highest probability giving"
        " sensitivity of at least 0.85, because a missed need is the costly error in custody (HELP-PC).",
        "",
        "| domain | AUROC | instrument rule AUROC | AUPRC | Brier | ECE | sensitivity | specificity |"
        " alert rate (rule) | ONNX parity | SHAP agreement |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for d in DOMAINS:
        m = manifest["metrics"][d]
        blo, bhi = m["baseline_auroc_ci95"]
        lines.append(
            f"| {TITLES[d]} | {_ci(m, 'auroc')} | {_fmt(m['baseline_auroc'])} ({_fmt(blo)}-{_fmt(bhi)}) |"
            f" {_ci(m, 'auprc')} | {_ci(m, 'brier')} | {_fmt(m['ece'])} | {_ci(m, 'sensitivity')} |"
            f" {_ci(m, 'specificity')} | {_fmt(m['alert_rate'])} ({_fmt(m['baseline_alert_rate'])}) |"
            f" {m['onnx_max_abs_diff']:.1e} | {m['shap_max_abs_diff']:.1e} |"
        )
    lines += [
        "",
        "![ROC](roc.png)",
        "",
        "![Calibration](calibration.png)",
        "",
        "### Model comparison (validation selection, test figures)",
        "",
    ]
    lines += [
        "| domain | family | val log-loss | val AUROC | test AUROC | test Brier | additive | monotone | eligible |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for d in DOMAINS:
        for fam, s in manifest["model_comparison"][d].items():
            lines.append(
                f"| {TITLES[d]} | {fam} | {_fmt(s['val_log_loss'], 4)} | {_fmt(s['val_auroc'])} |"
                f" {_fmt(s['test_auroc'])} | {_fmt(s['test_brier'], 4)} |"
                f" {s['additive']} | {s['monotone']} | {s['eligible']} |"
            )
    lines += [
        "",
        "## Evaluation and training data",
        "",
        f"Source: {data['kind']} ({data['rows']} screens, seed {data['seed']}); split 60/20/20 into"
        f" train ({manifest['splits']['train']}), validation ({manifest['splits']['validation']}) and test"
        f" ({manifest['splits']['test']}).",
        "Synthetic data come from `training/synthetic.py`: correlated latent needs with prevalences from"
        " DOMAIN.md section 3 (cited in the code), answers drawn by a graded-response model, and labels that"
        " stand for a full assessment's outcome. **Figures on synthetic data show the pipeline works; they"
        " are not evidence of clinical accuracy.** The external check on real data (`python -m training"
        " external-check nhanes|help`, see `the README (model section)`) is the honest test of the method.",
        "",
        "## Quantitative analyses: disaggregated results",
        "",
        "Criterion targeted: **calibration within groups** (a probability means the same for everyone), with"
        " the sensitivity floor of 0.85 as the safety aim in every group. With different base rates, equal"
        " error rates cannot also hold (Kleinberg 2016; Chouldechova 2017), so FPR and PPV differences are"
        " reported, not equalised. Groups under 20 people are listed but not interpreted.",
        "",
        "![Sensitivity by group](groups.png)",
        "",
    ]
    for d in DOMAINS:
        lines += [
            f"### {TITLES[d]}",
            "",
            "| attribute | group | n | prevalence | mean predicted | AUROC | sensitivity (95% CI) | FPR | PPV |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for attr in ("sex", "age_band", "ethnicity"):
            for g, r in manifest["group_audit"][d][attr]["groups"].items():
                lo, hi = r["sensitivity_ci95"]
                lines.append(
                    f"| {attr} | {g} | {int(r['n'])} | {_fmt(r['prevalence'])} | {_fmt(r['mean_predicted'])} |"
                    f" {_fmt(r['auroc'])} | {_fmt(r['sensitivity'])} ({_fmt(lo, 2)}-{_fmt(hi, 2)}) | {_fmt(r['fpr'])} |"
                    f" {_fmt(r['ppv'])} |"
                )
        lines.append("")
    lines += [
        "![Global importance](importance.png)",
        "",
        "## Ethical considerations",
        "",
        "Used on people in police custody, many of them vulnerable. The model only suggests who should be"
        " offered an assessment; a practitioner confirms or overrides every need with a reason. Ethnicity is"
        " recorded for this audit only. Sex is an input because depression and anxiety rates differ by sex"
        " (DOMAIN.md section 3); its contribution is shown in every explanation.",
        "",
        "## Caveats and recommendations",
        "",
        "- Trained on synthetic data until real screens with recorded assessment outcomes are exported;"
        " retrain with `--data` on that export and re-read this card before relying on the figures.",
        "- The learning disability items are the project's own, not a validated tool (DOMAIN.md section 2).",
        "- Thresholds trade alerts for sensitivity: the alert rates above are the cost of the 0.85 floor.",
        "- A group whose sensitivity interval falls below 0.85 needs review before the model is promoted.",
        '- An unanswered question takes the value learned for "not answered"; with sensitivity-first'
        " thresholds a nearly empty screen can meet the threshold. The explanation and the missing list show"
        " both.",
        "",
    ]
    (out / "model_card.md").write_text("\n".join(lines), encoding="utf-8")
