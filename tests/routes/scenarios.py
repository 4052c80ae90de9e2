"""Realistic screens for the route and report tests: who the person is and what they answered.

Ages are set through the date of birth relative to today, so a 21-year-old stays 21 whenever the
tests run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any


def born_years_ago(years: int) -> str:
    """A date of birth that makes the person exactly `years` old today (their birthday was 1 January)."""
    return date(date.today().year - years, 1, 1).isoformat()


NONE_BJMHS = {f"bjmhs_{i}": False for i in range(1, 9)}
NONE_RISK = {k: False for k in ("risk_current_thoughts", "risk_plan", "risk_past_attempt", "risk_self_harm_history",
                                "risk_recent_self_harm", "risk_charge_distress", "risk_observed_concern")}


@dataclass(frozen=True)
class Scenario:
    name: str
    age: int
    sex: str
    answers: dict[str, Any]
    routes: list[str] = field(default_factory=list)  # expected, in order


ACUTE_SUICIDAL_CRISIS = Scenario(
    name="acute suicidal crisis",
    age=34,
    sex="male",
    answers={
        **{f"phq9_{i}": v for i, v in enumerate([3, 3, 2, 3, 2, 3, 2, 2, 3], start=1)},
        **NONE_BJMHS, "bjmhs_6": True, "bjmhs_7": True,
        **NONE_RISK, "risk_current_thoughts": True, "risk_plan": True, "risk_past_attempt": True,
        "risk_self_harm_history": True, "risk_charge_distress": True,
    },
    routes=["mental_health_act_assessment", "crisis_mental_health", "community_mental_health", "appropriate_adult",
            "mhtr"],
)

LEARNING_DISABILITY = Scenario(
    name="learning disability with communication needs",
    age=29,
    sex="female",
    answers={
        "ldc_special_school": True, "ldc_reading_help": True, "ldc_ld_team": True, "ldc_time_money": True,
        "ldc_supported_living": True, "ldc_understanding": True, "ldc_communication": True, "ldc_suggestible": True,
        "ldc_autism": False, "ldc_adhd": False, **NONE_BJMHS, **NONE_RISK,
    },
    routes=["appropriate_adult", "learning_disability_team"],
)

OPIATE_WITHDRAWAL = Scenario(
    name="opiate dependence with withdrawal risk",
    age=38,
    sex="male",
    answers={
        **{f"dast10_{i}": v for i, v in enumerate([True, True, False, True, True, False, False, True, False, False],
                                                   start=1)},
        "withdrawal_daily_alcohol": False, "withdrawal_morning_drinking": False,
        "withdrawal_past_complications": False, "withdrawal_opioid_daily": True,
        "withdrawal_substitute_prescription": True, "withdrawal_benzodiazepine_daily": False,
        "withdrawal_crack_daily": False, "withdrawal_current_signs": True, **NONE_RISK,
    },
    routes=["withdrawal_management", "drug_alcohol_service", "drr"],
)

HOMELESS_YOUNG_ADULT = Scenario(
    name="homeless young adult with alcohol dependence",
    age=21,
    sex="male",
    answers={
        **{f"audit_{i}": v for i, v in enumerate([4, 3, 4, 3, 2, 3, 2, 2, 2, 2], start=1)},
        "withdrawal_daily_alcohol": True, "withdrawal_morning_drinking": True,
        "social_housing": True, "social_debt": True, "social_domestic_abuse": False, "social_veteran": False,
        "social_dependants": False, "social_care_leaver": True, **NONE_RISK,
    },
    routes=["drug_alcohol_service", "withdrawal_management", "housing_support", "young_adult_service", "atr", "rar"],
)

NOTHING_FOUND = Scenario(
    name="nothing found",
    age=44,
    sex="female",
    answers={
        **{f"phq9_{i}": 0 for i in range(1, 10)}, **{f"gad7_{i}": 0 for i in range(1, 8)},
        **NONE_BJMHS, **NONE_RISK, "audit_1": 1, "audit_2": 0, "audit_3": 0,
        **{f"dast10_{i}": False for i in range(1, 11)}, "dast10_3": True,
        **{f"ldc_{k}": False for k in ("special_school", "reading_help", "ld_team", "time_money", "supported_living",
                                        "understanding", "communication", "suggestible", "autism", "adhd")},
    },
    routes=[],
)

ALL = [ACUTE_SUICIDAL_CRISIS, LEARNING_DISABILITY, OPIATE_WITHDRAWAL, HOMELESS_YOUNG_ADULT, NOTHING_FOUND]


def open_screen(client: Any, headers: dict[str, str], scenario: Scenario, *, share_with_health: bool = True,
                share_with_court: bool = True) -> str:
    """A draft screen with the scenario's answers and consent recorded; returns its id."""
    from tests.factories import answer, create_screen, give_consent

    screen = create_screen(client, headers, date_of_birth=born_years_ago(scenario.age), sex=scenario.sex)
    give_consent(client, headers, screen["id"], share_with_health=share_with_health, share_with_court=share_with_court)
    answer(client, headers, screen["id"], scenario.answers)
    return str(screen["id"])


def decide_everything(client: Any, headers: dict[str, str], screen_id: str) -> list[dict[str, Any]]:
    """The nurse accepts every proposed route and confirms every proposed need, as after a normal review."""
    recs = client.get(f"/api/v1/screens/{screen_id}/recommendations", headers=headers).json()
    for rec in recs:
        r = client.post(f"/api/v1/screens/{screen_id}/recommendations/{rec['route']}/decision",
                        json={"decision": "accept"}, headers=headers)
        assert r.status_code == 200, r.text
    needs = client.get(f"/api/v1/screens/{screen_id}/decisions", headers=headers).json()["needs"]
    for need in needs:
        if need["proposed"]:
            r = client.put(f"/api/v1/screens/{screen_id}/needs/{need['domain']}", json={"need": True}, headers=headers)
            assert r.status_code == 200, r.text
    return list(recs)


def finalise(client: Any, headers: dict[str, str], screen_id: str) -> None:
    r = client.post(f"/api/v1/screens/{screen_id}/finalise", headers=headers)
    assert r.status_code == 200, r.text
