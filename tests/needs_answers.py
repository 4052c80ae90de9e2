"""Answer sets that make exactly one need domain positive, for building caseloads in tests.

Each set completes its instrument so it is scored; values were chosen from the definitions:
BJMHS item 7 alone refers; DAST-10 items 1, 2, 4 plus the reverse-scored item 3 answered "no" make 4;
one LD-team answer meets the LDC rule; current thoughts meet the risk rule; any physical need counts;
the housing item is carried as its own domain.
"""

from __future__ import annotations

from typing import Any


def _all_false(prefix: str, n: int) -> dict[str, Any]:
    return {f"{prefix}_{i}": False for i in range(1, n + 1)}


_RISK = ["risk_current_thoughts", "risk_plan", "risk_past_attempt", "risk_self_harm_history", "risk_recent_self_harm",
         "risk_charge_distress", "risk_observed_concern"]
_LDC = ["ldc_special_school", "ldc_reading_help", "ldc_ld_team", "ldc_time_money", "ldc_supported_living",
        "ldc_understanding", "ldc_communication", "ldc_suggestible", "ldc_autism", "ldc_adhd"]
_SOCIAL = ["social_housing", "social_debt", "social_domestic_abuse", "social_veteran", "social_dependants",
           "social_care_leaver"]
_PHYSICAL = ["physical_long_term_condition", "physical_needs_medication", "physical_injury", "physical_head_injury",
             "physical_pregnant"]

NEED_ANSWERS: dict[str, dict[str, Any]] = {
    "mental_health": _all_false("bjmhs", 8) | {"bjmhs_7": True},
    "suicide_risk": dict.fromkeys(_RISK, False) | {"risk_current_thoughts": True},
    "substance_misuse": _all_false("dast10", 10) | {"dast10_1": True, "dast10_2": True, "dast10_4": True},
    "learning_disability": dict.fromkeys(_LDC, False) | {"ldc_ld_team": True},
    "physical_health": dict.fromkeys(_PHYSICAL, False) | {"physical_long_term_condition": True},
    "housing": dict.fromkeys(_SOCIAL, False) | {"social_housing": True},
}


def answers_for(*domains: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in domains:
        out |= NEED_ANSWERS[d]
    return out
