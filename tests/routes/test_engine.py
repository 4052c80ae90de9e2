"""The rules engine and the rule files on their own: no database, no app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from screening.instruments.registry import Registry, load_registry
from screening.instruments.service import complete_scores
from screening.routes.engine import Facts, propose_needs, propose_routes, scores_by_id
from screening.routes.rulebook import SHIPPED_DIR, Rulebook, RulebookError, Urgency, load_rulebook
from tests.routes import scenarios


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(scope="module")
def book(registry: Registry) -> Rulebook:
    return load_rulebook(registry)


def facts(registry: Registry, answers: dict[str, Any], age: int = 40, **kw: Any) -> Facts:
    return Facts(answers=answers, scores=scores_by_id(complete_scores(registry, answers)), age=age, **kw)


def routes(book: Rulebook, registry: Registry, f: Facts) -> dict[str, Urgency]:
    return {p.route: p.urgency for p in propose_routes(book, registry, f)}


REQUIRED_ROUTES = {
    "mental_health_act_assessment", "crisis_mental_health", "community_mental_health", "appropriate_adult",
    "learning_disability_team", "autism_support", "drug_alcohol_service", "withdrawal_management", "housing_support",
    "domestic_abuse_support", "veterans_support", "young_adult_service", "children_and_young_people",
    "physical_health_review", "mhtr", "drr", "atr", "rar", "psychiatric_report",
}


def test_every_required_route_has_a_rule_and_a_local_service(book: Rulebook) -> None:
    assert REQUIRED_ROUTES <= set(book.rules.routes)
    assert REQUIRED_ROUTES <= {r.route for r in book.rules.rules}
    assert all(book.service_for(r, "Leeds Central") is not None for r in REQUIRED_ROUTES)


@pytest.mark.parametrize("item", ["risk_plan", "risk_observed_concern"])
def test_any_current_plan_or_intent_is_immediate_whatever_else_is_answered(
    book: Rulebook, registry: Registry, item: str
) -> None:
    assert routes(book, registry, facts(registry, {item: True}))["crisis_mental_health"] is Urgency.immediate
    calm = {**scenarios.NOTHING_FOUND.answers, item: True}
    assert routes(book, registry, facts(registry, calm))["crisis_mental_health"] is Urgency.immediate


def test_unanswered_items_never_fire(book: Rulebook, registry: Registry) -> None:
    assert routes(book, registry, facts(registry, {})) == {}
    assert routes(book, registry, facts(registry, {"risk_plan": False, "social_housing": False})) == {}


@pytest.mark.parametrize(("age", "expected"), [
    (17, {"appropriate_adult", "children_and_young_people"}),
    (18, {"young_adult_service"}),
    (25, {"young_adult_service"}),
    (26, set()),
])
def test_age_routes(book: Rulebook, registry: Registry, age: int, expected: set[str]) -> None:
    assert set(routes(book, registry, facts(registry, {}, age=age))) == expected


def test_model_needs_fire_rules_and_are_cited_as_model_evidence(book: Rulebook, registry: Registry) -> None:
    f = facts(registry, {}, model_needs={"learning_disability": True, "mental_health": False})
    proposals = {p.route: p for p in propose_routes(book, registry, f)}
    assert set(proposals) == {"appropriate_adult", "learning_disability_team"}
    assert [(e.source, e.ref) for e in proposals["learning_disability_team"].reasons] == [
        ("model", "learning_disability")]
    needs = propose_needs(book, registry, f)
    assert needs["learning_disability"][0] is True and needs["mental_health"][0] is False


def test_every_cause_is_cited_not_just_the_first(book: Rulebook, registry: Registry) -> None:
    f = facts(registry, scenarios.LEARNING_DISABILITY.answers)
    aa = next(p for p in propose_routes(book, registry, f) if p.route == "appropriate_adult")
    refs = {e.ref for e in aa.reasons}
    assert {"ldc_understanding", "ldc_communication", "ldc_suggestible", "ldc"} <= refs
    assert all(e.text.startswith("May be vulnerable under PACE Code C 1.13(d)") for e in aa.reasons)


def test_consent_conditions_gate_without_being_cited(tmp_path: Path, registry: Registry) -> None:
    rules = (SHIPPED_DIR / "rules.yaml").read_text().replace(
        "    when: {item_true: social_veteran}",
        "    when: {all: [{item_true: social_veteran}, {consent: share_with_health}]}")
    (tmp_path / "rules.yaml").write_text(rules)
    book = load_rulebook(registry, tmp_path)
    assert "veterans_support" not in routes(book, registry, facts(registry, {"social_veteran": True}))
    f = facts(registry, {"social_veteran": True}, consent={"share_with_health": True})
    [proposal] = propose_routes(book, registry, f)
    assert [(e.source, e.ref) for e in proposal.reasons] == [("item", "social_veteran")]


def test_a_site_folder_replaces_the_directory_and_changes_the_hash(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "directory.yaml").write_text(
        'version: "2026.11-leeds"\nservices:\n  housing_support:\n'
        '    - {name: Leeds Housing Options, contact: "0113 222 4412", hours: "9 to 5", eligibility: "Leeds",'
        ' suites: [Leeds Central]}\n')
    shipped = load_rulebook(registry)
    site = load_rulebook(registry, tmp_path)
    assert site.directory_version == "2026.11-leeds" and site.directory_sha256 != shipped.directory_sha256
    assert site.rules_sha256 == shipped.rules_sha256
    assert site.service_for("housing_support", "Leeds Central").name == "Leeds Housing Options"  # type: ignore[union-attr]
    assert site.service_for("housing_support", "Bradford") is None


@pytest.mark.parametrize(("old", "new", "message"), [
    ("route: veterans_support", "route: astrology", "unknown route astrology"),
    ("{item_true: social_veteran}", "{item_true: social_veteren}", "unknown item social_veteren"),
    ("bands: [severe]}", "bands: [catastrophic]}", "phq9 has no band ['catastrophic']"),
    ("{model_need: mental_health}", "{model_need: horoscope}", "unknown model domain horoscope"),
    ("urgency: routine", "urgency: whenever", "urgency"),
])
def test_a_broken_edit_fails_at_load_naming_the_problem(
    tmp_path: Path, registry: Registry, old: str, new: str, message: str
) -> None:
    text = (SHIPPED_DIR / "rules.yaml").read_text()
    assert old in text
    (tmp_path / "rules.yaml").write_text(text.replace(old, new, 1))
    with pytest.raises(RulebookError, match=r"rules\.yaml") as err:
        load_rulebook(registry, tmp_path)
    assert message in str(err.value)


def test_memoised_proposals_are_the_engines_own_for_every_scenario(registry: Registry) -> None:
    from screening.routes.service import proposed_routes

    book = load_rulebook(registry)  # a book of its own: its memo starts empty
    for s in scenarios.ALL:
        for model_needs in ({}, {"mental_health": True}):
            f = facts(registry, s.answers, s.age, model_needs=model_needs)
            first = proposed_routes(book, registry, f)
            assert first == propose_routes(book, registry, f), s.name
            assert proposed_routes(book, registry, f) == first  # served from the memo
    assert len(book.derived) == 1


def test_the_proposal_memo_tells_apart_what_the_rules_read(book: Rulebook, registry: Registry) -> None:
    from screening.routes.service import proposed_routes

    base = {"risk_current_thoughts": True, "risk_plan": True}
    seen = [proposed_routes(book, registry, facts(registry, base))]
    variants = [
        facts(registry, {**base, "risk_plan": False}),
        facts(registry, base, age=16),
        facts(registry, base, model_needs={"learning_disability": True}),
        facts(registry, base, contacts=4, recorded_domains=("mental_health", "substance_misuse", "housing")),
        facts(registry, {**base, "social_housing": True}),
    ]
    for f in variants:
        got = proposed_routes(book, registry, f)
        assert got == propose_routes(book, registry, f)
        assert got != seen[0], f
