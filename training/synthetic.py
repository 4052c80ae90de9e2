"""A seeded synthetic custody population for training and testing the screening model.

Each person has correlated latent severities (depression/anxiety, serious mental illness, learning
disability, alcohol, drugs). Answers are drawn from them with a graded-response (item response)
model, so every item is a noisy indicator of its latent need; the labels are the outcome of a full
assessment: the latent need seen through the assessor's own noise, thresholded so that the
prevalences below hold. The output has exactly the columns of a real export (see `training.data`),
so the same pipeline trains on both.

Sources for every figure are in the comments; figures marked (unverified) are defaults a site must
be able to change, as DOMAIN.md section 3 asks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from screening.instruments.registry import Registry, load_registry
from screening.instruments.schemas import ItemType

LATENTS = ("dep", "smi", "ld", "alc", "drug")

# Co-occurrence is the norm: seven in ten prisoners have more than one disorder (ONS 1998); among
# people referred to L&D, 71% have a mental health and 52% a drug or alcohol need, so at least 23%
# have both (RAND 2017, n = 8,729). Correlations between latent severities (unverified) chosen so
# that about 30% of the population has both a mental health and a substance need.
_CORR = np.array(
    [
        # dep   smi   ld    alc   drug
        [1.00, 0.45, 0.10, 0.25, 0.30],
        [0.45, 1.00, 0.10, 0.15, 0.30],
        [0.10, 0.10, 1.00, 0.05, 0.05],
        [0.25, 0.15, 0.05, 1.00, 0.35],
        [0.30, 0.30, 0.05, 0.35, 1.00],
    ]
)


@dataclass(frozen=True)
class Prevalence:
    """Share of the screened population whose full assessment finds each need."""

    # Depression/anxiety needing secondary care. Unselected custody entrants: current mental illness
    # 29% (Samele 2021, n = 134); after L&D assessment 44% go to secondary mental health (one service,
    # n = 430). 0.35 sits between them (unverified).
    depression: float = 0.35
    # Serious mental illness: 12% (HELP-PC, North of England).
    smi: float = 0.12
    # Intellectual disability: 6.7% of London custody (Young et al. 2013, n = 200); 4% in Samele 2021.
    learning_disability: float = 0.067
    # Drug or alcohol need: 52% of people referred to L&D (RAND 2017). Split into alcohol and drugs
    # (unverified) so that the union is close to 52% under the correlations above.
    alcohol: float = 0.30
    drugs: float = 0.34


# About 85% of arrests in England and Wales are of men (Home Office, "Police powers and procedures",
# arrests year ending March 2023); "other" and "unknown" are small defaults (unverified).
_SEX = (("male", 0.835), ("female", 0.145), ("other", 0.005), ("unknown", 0.015))
# Arrests by self-defined ethnicity, rounded (Home Office, "Police powers and procedures" 2023:
# White about 72%, Black 14%, Asian 8%, Mixed 4%, Other 2%). Recorded for the fairness audit only;
# nothing in the generator depends on it, so any group difference the audit finds is the model's.
_ETHNICITY = (("white", 0.72), ("black", 0.14), ("asian", 0.08), ("mixed", 0.04), ("other", 0.02))

# Women show roughly 1.5-2x the rates of depression, anxiety and PTSD (DOMAIN.md section 3); a 0.45 SD
# shift of the latent gives about 1.6x at the prevalence above. Men drink and use drugs more (unverified
# direction, size chosen small).
_FEMALE_SHIFT = {"dep": 0.45, "smi": 0.0, "ld": 0.0, "alc": -0.25, "drug": -0.15}

# Assessor noise (SD on the latent scale): a full assessment is not the latent truth either. Chosen
# (unverified) so that instrument rules land near their published accuracy on this population.
_ASSESSOR_SD = 0.35

# Interrupted screens (release, transfer, declining part-way) and single skipped questions (unverified).
_P_INTERRUPTED = 0.08
_P_ITEM_SKIPPED = 0.02
_SECTION_ORDER = ("mental_health", "risk", "learning_disability", "alcohol", "drugs", "social")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-z))
    return out


class _Answers:
    """Draws answers for one item at a time from a latent, with a graded-response model."""

    def __init__(self, registry: Registry, rng: np.random.Generator, n: int) -> None:
        self.registry = registry
        self.rng = rng
        self.n = n
        self.cols: dict[str, np.ndarray] = {}

    def ordinal(self, item_id: str, theta: np.ndarray, a: float, b: list[float]) -> None:
        """P(answer >= k) = sigmoid(a (theta - b_k)); `b` increasing, one per step above option 0."""
        item = self.registry.items[item_id]
        assert item.type is ItemType.ordinal and len(b) == len(item.options) - 1
        u = self.rng.random(self.n)
        steps = _sigmoid(a * (theta[:, None] - np.asarray(b)[None, :]))
        self.cols[item_id] = (u[:, None] < steps).sum(axis=1).astype(float)

    def boolean(self, item_id: str, theta: np.ndarray, a: float, b: float) -> None:
        item = self.registry.items[item_id]
        present = self.rng.random(self.n) < _sigmoid(a * (theta - b))
        # A reverse-scored item (DAST-10 item 3, "able to stop") is answered "no" when the problem is present.
        self.cols[item_id] = (present != item.reverse).astype(float)


def generate(n: int, seed: int, prevalence: Prevalence | None = None) -> pd.DataFrame:
    """`n` screened people with answers, demographics and full-assessment outcomes (export columns)."""
    prev = prevalence or Prevalence()
    registry = load_registry()
    rng = np.random.default_rng(seed)

    sex = rng.choice([s for s, _ in _SEX], size=n, p=[p for _, p in _SEX])
    ethnicity = rng.choice([e for e, _ in _ETHNICITY], size=n, p=[p for _, p in _ETHNICITY])
    # Age: custody is young (median arrestee age around 30, Home Office 2023, unverified); 4% under 18
    # (youth custody is served by L&D too, DOMAIN.md section 1).
    age = np.where(rng.random(n) < 0.04, rng.integers(10, 18, n), 18 + rng.gamma(2.0, 7.0, n)).round()
    age = np.clip(age, 10, 90)

    z = rng.multivariate_normal(np.zeros(len(LATENTS)), _CORR, size=n)
    lat = {k: z[:, i] for i, k in enumerate(LATENTS)}
    female = sex == "female"
    for k, shift in _FEMALE_SHIFT.items():
        lat[k] = lat[k] + shift * female
    # Drug use falls and harmful drinking rises with age in arrestee samples (unverified direction).
    lat["drug"] = lat["drug"] - 0.02 * (age - 30)
    lat["alc"] = lat["alc"] + 0.01 * (age - 30)

    ans = _Answers(registry, rng, n)
    dep, smi, ld, alc, drug = (lat[k] for k in LATENTS)
    anx = 0.8 * dep + 0.6 * rng.standard_normal(n)
    suicidal = 0.7 * dep + 0.3 * smi + 0.6 * rng.standard_normal(n)

    # PHQ-9: thresholds spread so that a total of 10 sits near the depression cut-off (Kroenke 2001,
    # sens 88% / spec 88%). Item 9 is endorsed less often than the others.
    for i in range(1, 9):
        ans.ordinal(f"phq9_{i}", dep, 1.7, [0.0 + 0.05 * i, 0.75, 1.35])
    ans.ordinal("phq9_9", suicidal, 1.8, [1.0, 1.6, 2.1])
    # GAD-7 from an anxiety latent correlated with depression (Spitzer 2006 cut-off 10).
    for i in range(1, 8):
        ans.ordinal(f"gad7_{i}", anx, 1.6, [0.1, 0.8, 1.4])
    # BJMHS: psychotic and manic items track SMI, items 3, 5, 6 track depression; 7 (psychiatric
    # medication) both; 8 (ever in hospital) SMI with a high threshold: 7% were previously detained
    # under the Mental Health Act (Payne-James).
    ans.boolean("bjmhs_1", smi, 2.0, 1.4)
    ans.boolean("bjmhs_2", smi, 2.0, 1.5)
    ans.boolean("bjmhs_3", dep, 1.2, 1.3)
    ans.boolean("bjmhs_4", smi, 1.4, 1.3)
    ans.boolean("bjmhs_5", dep, 1.2, 1.4)
    ans.boolean("bjmhs_6", dep, 1.5, 1.0)
    ans.boolean("bjmhs_7", 0.6 * smi + 0.5 * dep, 1.8, 1.0)
    ans.boolean("bjmhs_8", smi, 2.2, 1.6)
    # Risk: suicide risk 18% of custody entrants (Samele 2021); self-harm history 16% (Payne-James).
    ans.boolean("risk_current_thoughts", suicidal, 2.0, 1.1)
    ans.boolean("risk_plan", suicidal, 2.5, 1.9)
    ans.boolean("risk_past_attempt", suicidal, 1.5, 1.0)
    ans.boolean("risk_self_harm_history", suicidal, 1.5, 1.1)
    ans.boolean("risk_recent_self_harm", suicidal, 2.0, 1.7)
    ans.boolean("risk_charge_distress", 0.4 * dep + 0.9 * rng.standard_normal(n), 1.0, 0.6)
    ans.boolean("risk_observed_concern", suicidal, 2.2, 1.9)
    # LD indicators: three HELP-PC questions found 83% of likely cases (DOMAIN.md section 2), so the
    # strongest items are sensitive but not specific; reading help is common in custody regardless.
    ans.boolean("ldc_special_school", ld, 2.2, 1.1)
    ans.boolean("ldc_reading_help", 0.6 * ld + 0.5 * rng.standard_normal(n), 1.6, 0.7)
    ans.boolean("ldc_ld_team", ld, 2.5, 1.8)
    ans.boolean("ldc_time_money", ld, 2.2, 1.5)
    ans.boolean("ldc_supported_living", ld, 2.0, 1.8)
    ans.boolean("ldc_understanding", 0.8 * ld + 0.3 * smi, 2.0, 1.5)
    ans.boolean("ldc_communication", 0.7 * ld + 0.5 * rng.standard_normal(n), 1.8, 1.6)
    ans.boolean("ldc_suggestible", 0.6 * ld + 0.3 * dep, 1.6, 1.5)
    # Autism and ADHD: ADHD 11% (Samele 2021) to 23.5% (Young 2013) of custody entrants; both only
    # loosely tied to intellectual disability.
    ans.boolean("ldc_autism", 0.4 * ld + 0.9 * rng.standard_normal(n), 2.0, 2.2)
    ans.boolean("ldc_adhd", 0.3 * ld + 0.3 * drug + 0.9 * rng.standard_normal(n), 1.6, 1.1)
    # AUDIT (WHO manual): consumption items 1-3, dependence and harm items 4-10. Cut-offs AUDIT >= 8
    # (sens 76%, spec 92%) and AUDIT-C >= 5 guide the thresholds.
    ans.ordinal("audit_1", alc + 0.3, 1.5, [-1.2, -0.4, 0.3, 1.0])
    ans.ordinal("audit_2", alc, 1.5, [-0.6, 0.0, 0.6, 1.2])
    ans.ordinal("audit_3", alc, 1.6, [-0.3, 0.4, 1.0, 1.6])
    for i in range(4, 9):
        ans.ordinal(f"audit_{i}", alc, 1.6, [0.2, 0.8, 1.3, 1.8])
    ans.ordinal("audit_9", alc, 1.4, [0.6, 1.2])
    ans.ordinal("audit_10", alc, 1.5, [0.2, 0.9])
    # DAST-10 (Skinner 1982; sens 80-85%, spec 78-88% at >= 3).
    dast_b = {1: 0.0, 2: 0.6, 3: 1.1, 4: 0.9, 5: 0.5, 6: 0.7, 7: 1.1, 8: 0.9, 9: 1.0, 10: 1.4}
    for i, b in dast_b.items():
        ans.boolean(f"dast10_{i}", drug, 1.8, b)
    # Withdrawal: police screening missed half of alcohol-withdrawal risk (HELP-PC), so these items
    # carry real signal that the instrument totals alone do not.
    ans.boolean("withdrawal_daily_alcohol", alc, 2.0, 1.1)
    ans.boolean("withdrawal_morning_drinking", alc, 2.2, 1.5)
    ans.boolean("withdrawal_past_complications", 0.6 * alc + 0.5 * drug, 2.0, 1.9)
    ans.boolean("withdrawal_opioid_daily", drug, 2.0, 1.5)
    ans.boolean("withdrawal_substitute_prescription", drug, 1.8, 1.6)
    ans.boolean("withdrawal_benzodiazepine_daily", drug, 1.8, 1.9)
    ans.boolean("withdrawal_crack_daily", drug, 2.0, 1.6)
    ans.boolean("withdrawal_current_signs", np.maximum(alc, drug), 2.2, 1.9)
    # Social needs: accommodation is the top unmet need (Samele 2021); housing and debt cluster with
    # substance misuse and serious mental illness (Revolving Doors 2013). Rates unverified.
    ans.boolean("social_housing", 0.35 * drug + 0.3 * smi + 0.2 * alc + 0.8 * rng.standard_normal(n), 1.5, 0.7)
    ans.boolean("social_debt", 0.3 * drug + 0.3 * dep + 0.8 * rng.standard_normal(n), 1.5, 0.9)
    ans.boolean("social_domestic_abuse", 0.3 * dep + 0.8 * female + 0.8 * rng.standard_normal(n), 1.5, 1.5)
    ans.boolean("social_veteran", 0.02 * (age - 40) + rng.standard_normal(n), 2.0, 1.7)
    ans.boolean("social_dependants", rng.standard_normal(n) + 0.4 * female, 1.5, 0.6)
    ans.boolean("social_care_leaver", 0.3 * ld + 0.2 * drug + 0.9 * rng.standard_normal(n), 1.6, 1.2)
    for inst_id in ("physical",):
        for it in registry[inst_id].items:
            ans.boolean(it.id, rng.standard_normal(n), 1.0, 1.2)

    df = pd.DataFrame(ans.cols)
    _apply_missing(df, registry, rng)

    def outcome(theta: np.ndarray, p: float) -> np.ndarray:
        seen = theta + _ASSESSOR_SD * rng.standard_normal(n)
        return seen > np.quantile(seen, 1 - p)

    mh = outcome(dep, prev.depression) | outcome(smi, prev.smi)
    sm = outcome(alc, prev.alcohol) | outcome(drug, prev.drugs)
    ldo = outcome(ld, prev.learning_disability)
    df["age"] = age
    df.loc[rng.random(n) < 0.01, "age"] = np.nan
    df["sex"] = sex
    df["ethnicity"] = ethnicity
    df["outcome_mental_health"] = mh.astype(int)
    df["outcome_learning_disability"] = ldo.astype(int)
    df["outcome_substance_misuse"] = sm.astype(int)
    return df


def _apply_missing(df: pd.DataFrame, registry: Registry, rng: np.random.Generator) -> None:
    n = len(df)
    section_of = {it_id: registry[registry.owner[it_id]].section for it_id in df.columns}
    rank = {s: i for i, s in enumerate(_SECTION_ORDER)}
    # An interrupted screen loses every section from a random point onwards.
    stop = np.where(rng.random(n) < _P_INTERRUPTED, rng.integers(1, len(_SECTION_ORDER), n), len(_SECTION_ORDER))
    for col in df.columns:
        r = rank.get(section_of[col], len(_SECTION_ORDER) - 1)
        lost = (stop <= r) | (rng.random(n) < _P_ITEM_SKIPPED)
        df.loc[lost, col] = np.nan
    # UK AUDIT skip logic: items 4-10 are asked only when AUDIT-C (items 1-3) is 5 or more.
    auditc = df[["audit_1", "audit_2", "audit_3"]]
    asked = auditc.notna().all(axis=1) & (auditc.sum(axis=1) >= 5)
    df.loc[~asked, [f"audit_{i}" for i in range(4, 11)]] = np.nan
