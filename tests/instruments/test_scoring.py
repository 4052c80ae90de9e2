"""The scoring engine against published rules: worked examples and properties for every instrument."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from screening.instruments.registry import load_registry
from screening.instruments.schemas import Instrument, ItemType
from screening.instruments.scoring import IncompleteAnswers, score

REGISTRY = load_registry()


def answers_for(inst: Instrument) -> st.SearchStrategy[dict[str, Any]]:
    parts = {
        it.id: st.booleans() if it.type is ItemType.boolean else st.integers(0, len(it.options) - 1)
        for it in inst.items
    }
    return st.fixed_dictionaries(parts)


def reference_total(inst_id: str, a: dict[str, Any]) -> int:
    """Each instrument's total written out independently from its manual, not from the YAML."""
    if inst_id in ("phq9", "gad7"):
        return sum(a.values())  # every item 0-3, points = position
    if inst_id == "audit":
        # Items 1-8 score 0-4 by position; items 9 and 10 have three options scoring 0, 2, 4.
        return sum(a[f"audit_{i}"] for i in range(1, 9)) + 2 * a["audit_9"] + 2 * a["audit_10"]
    if inst_id == "auditc":
        return a["audit_1"] + a["audit_2"] + a["audit_3"]
    if inst_id == "dast10":
        # One point per yes, except item 3 ("able to stop when you want to"), which scores a no.
        return sum(a[f"dast10_{i}"] for i in range(1, 11) if i != 3) + (not a["dast10_3"])
    if inst_id == "bjmhs":
        return sum(a[f"bjmhs_{i}"] for i in range(1, 7))  # symptom count, items 1-6
    return sum(bool(v) for v in a.values())  # project's own yes/no sets: count of indicators present


def reference_band(inst_id: str, total: int) -> str | None:
    cuts = {
        "phq9": [(0, "minimal"), (5, "mild"), (10, "moderate"), (15, "moderately_severe"), (20, "severe")],
        "gad7": [(0, "minimal"), (5, "mild"), (10, "moderate"), (15, "severe")],
        "audit": [(0, "low_risk"), (8, "increasing_risk"), (16, "higher_risk"), (20, "possible_dependence")],
        "dast10": [(0, "none"), (1, "low"), (3, "moderate"), (6, "substantial"), (9, "severe")],
    }.get(inst_id)
    if cuts is None:
        return None
    return [name for start, name in cuts if total >= start][-1]


def reference_positive(inst_id: str, a: dict[str, Any], total: int) -> bool:
    thresholds = {"phq9": 10, "gad7": 10, "audit": 8, "auditc": 5, "dast10": 3, "social": 1, "physical": 1}
    if inst_id in thresholds:
        return total >= thresholds[inst_id]
    if inst_id == "bjmhs":
        return total >= 2 or a["bjmhs_7"] or a["bjmhs_8"]
    if inst_id == "risk":
        return any(a[k] for k in ("risk_current_thoughts", "risk_plan", "risk_recent_self_harm", "risk_observed_concern"))
    if inst_id == "ldc":
        return total >= 2 or a["ldc_ld_team"] or a["ldc_understanding"]
    if inst_id == "withdrawal":
        return any(a[k] for k in ("withdrawal_past_complications", "withdrawal_current_signs", "withdrawal_opioid_daily",
                                  "withdrawal_benzodiazepine_daily", "withdrawal_morning_drinking")) or (
            a["withdrawal_daily_alcohol"] and a["withdrawal_crack_daily"])
    raise AssertionError(f"no reference rule for {inst_id}")


@pytest.mark.parametrize("inst_id", REGISTRY.ids)
def test_every_instrument_matches_its_reference_rules(inst_id: str) -> None:
    inst = REGISTRY[inst_id]

    @settings(max_examples=300, deadline=None)
    @given(answers_for(inst))
    def check(a: dict[str, Any]) -> None:
        result = score(inst, a)
        total = reference_total(inst_id, a)
        assert result.total == total
        assert 0 <= result.total <= result.max_total
        assert result.band == reference_band(inst_id, total)
        assert result.positive == reference_positive(inst_id, a, total)

    check()


def test_every_shipped_instrument_has_a_reference_rule() -> None:
    assert set(REGISTRY.ids) == {"phq9", "gad7", "bjmhs", "audit", "auditc", "dast10", "risk", "ldc", "withdrawal",
                                 "social", "physical"}


@pytest.mark.parametrize("inst_id", ["phq9", "gad7", "audit", "dast10"])
def test_bands_are_monotone_in_severity(inst_id: str) -> None:
    inst = REGISTRY[inst_id]
    order = [b.name for b in inst.bands]

    @settings(max_examples=200, deadline=None)
    @given(answers_for(inst), st.sampled_from([it.id for it in inst.items]))
    def check(a: dict[str, Any], item_id: str) -> None:
        item = inst.item(item_id)
        worse = dict(a)
        if item.type is ItemType.boolean:
            worse[item_id] = not item.reverse  # the answer that scores the point
        else:
            worse[item_id] = max(range(len(item.options)), key=lambda i: item.options[i].points)
        before, after = score(inst, a), score(inst, worse)
        assert after.total >= before.total
        assert order.index(after.band) >= order.index(before.band)
        assert after.positive or not before.positive

    check()


# Worked examples: totals computed by hand from each instrument's published scoring sheet.
WORKED = [
    # PHQ-9 (Kroenke 2001): 1+1+2+2+1+1+1+0+1 = 10, "moderate", at the >= 10 threshold.
    ("phq9", {"phq9_1": 1, "phq9_2": 1, "phq9_3": 2, "phq9_4": 2, "phq9_5": 1, "phq9_6": 1, "phq9_7": 1,
              "phq9_8": 0, "phq9_9": 1}, 10, "moderate", True),
    ("phq9", {f"phq9_{i}": 1 for i in range(1, 10)}, 9, "mild", False),
    ("phq9", {f"phq9_{i}": 3 for i in range(1, 10)}, 27, "severe", True),
    # GAD-7 (Spitzer 2006): 9 is "mild", below the threshold; 15 is "severe".
    ("gad7", {"gad7_1": 2, "gad7_2": 2, "gad7_3": 2, "gad7_4": 1, "gad7_5": 1, "gad7_6": 1, "gad7_7": 0}, 9, "mild",
     False),
    ("gad7", {"gad7_1": 3, "gad7_2": 3, "gad7_3": 3, "gad7_4": 2, "gad7_5": 2, "gad7_6": 1, "gad7_7": 1}, 15,
     "severe", True),
    # AUDIT (WHO 2001): items 9-10 answered "yes, during the last year" score 4 each, not 2.
    ("audit", {"audit_1": 1, "audit_2": 0, "audit_3": 0, "audit_4": 0, "audit_5": 0, "audit_6": 0, "audit_7": 0,
               "audit_8": 0, "audit_9": 2, "audit_10": 0}, 5, "low_risk", False),
    ("audit", {"audit_1": 1, "audit_2": 0, "audit_3": 0, "audit_4": 0, "audit_5": 0, "audit_6": 0, "audit_7": 0,
               "audit_8": 0, "audit_9": 2, "audit_10": 1}, 7, "low_risk", False),
    ("audit", {"audit_1": 4, "audit_2": 4, "audit_3": 4, "audit_4": 2, "audit_5": 1, "audit_6": 1, "audit_7": 0,
               "audit_8": 0, "audit_9": 0, "audit_10": 1}, 18, "higher_risk", True),
    ("audit", {f"audit_{i}": 4 for i in range(1, 9)} | {"audit_9": 2, "audit_10": 2}, 40, "possible_dependence", True),
    # AUDIT-C: 2 + 1 + 2 = 5, positive at the UK cut-off; 4 is not.
    ("auditc", {"audit_1": 2, "audit_2": 1, "audit_3": 2}, 5, None, True),
    ("auditc", {"audit_1": 2, "audit_2": 1, "audit_3": 1}, 4, None, False),
    # DAST-10 (Skinner): all "no" scores 1 (item 3, unable to stop); all "yes" scores 9.
    ("dast10", {f"dast10_{i}": False for i in range(1, 11)}, 1, "low", False),
    ("dast10", {f"dast10_{i}": True for i in range(1, 11)}, 9, "severe", True),
    ("dast10", {f"dast10_{i}": i in (1, 2) for i in range(1, 11)}, 3, "moderate", True),
    # BJMHS (Steadman 2005): one symptom alone is not a referral; hospitalisation alone is.
    ("bjmhs", {f"bjmhs_{i}": i == 1 for i in range(1, 9)}, 1, None, False),
    ("bjmhs", {f"bjmhs_{i}": i == 8 for i in range(1, 9)}, 0, None, True),
    ("bjmhs", {f"bjmhs_{i}": i == 7 for i in range(1, 9)}, 0, None, True),
    ("bjmhs", {f"bjmhs_{i}": i in (2, 5) for i in range(1, 9)}, 2, None, True),
]


@pytest.mark.parametrize(("inst_id", "answers", "total", "band", "positive"), WORKED)
def test_worked_examples(inst_id: str, answers: dict[str, Any], total: int, band: str | None, positive: bool) -> None:
    result = score(REGISTRY[inst_id], answers)
    assert (result.total, result.band, result.positive) == (total, band, positive)


def test_incomplete_answers_name_the_missing_items() -> None:
    with pytest.raises(IncompleteAnswers) as exc:
        score(REGISTRY["gad7"], {"gad7_1": 1})
    assert exc.value.missing == [f"gad7_{i}" for i in range(2, 8)]


def test_urgent_flags_come_first() -> None:
    a = {k.id: False for k in REGISTRY["risk"].items} | {"risk_current_thoughts": True, "risk_plan": True}
    flags = score(REGISTRY["risk"], a).flags
    assert [f.item_id for f in flags] == ["risk_plan", "risk_current_thoughts"]
    assert flags[0].urgent and not flags[1].urgent


def test_phq9_item9_flags_any_thoughts_of_self_harm() -> None:
    a = {f"phq9_{i}": 0 for i in range(1, 10)}
    assert score(REGISTRY["phq9"], a).flags == []
    assert [f.item_id for f in score(REGISTRY["phq9"], a | {"phq9_9": 1}).flags] == ["phq9_9"]


def partial_screens() -> st.SearchStrategy[dict[str, Any]]:
    """Any subset of the registry's items answered with valid values: a screen part-way through."""
    parts = {
        item_id: st.booleans() if item.type is ItemType.boolean else st.integers(0, len(item.options) - 1)
        for item_id, item in REGISTRY.items.items()
    }
    return st.dictionaries(st.sampled_from(sorted(parts)), st.none()).flatmap(
        lambda chosen: st.fixed_dictionaries({k: parts[k] for k in chosen}))


@settings(max_examples=150, deadline=None)
@given(first=partial_screens(), second=partial_screens())
def test_memoised_scores_and_progress_equal_a_fresh_computation(first: dict[str, Any], second: dict[str, Any]) -> None:
    """The per-instrument memo gives what scoring every instrument afresh gives, for screens seen before or not."""
    from screening.instruments.scoring import missing_items
    from screening.instruments.service import complete_scores, expected_items, progress, scores_and_progress

    for answers in (first, second, first):
        fresh = [score(inst, answers) for inst in REGISTRY if not missing_items(inst, answers)]
        assert complete_scores(REGISTRY, answers) == fresh
        expected = expected_items(REGISTRY, answers)
        counts = {"answered": sum(1 for i in expected if i in answers), "expected": len(expected)}
        assert progress(REGISTRY, answers) == counts
        assert scores_and_progress(REGISTRY, answers) == (fresh, counts)
