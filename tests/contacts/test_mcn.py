from __future__ import annotations

from screening.contacts.mcn import INTEGRATED_OFFENDER_MANAGEMENT, LINK_WORKER, McnRule, assess

RULE = McnRule(min_contacts=3, min_domains=2, housing_with_any=True)


def test_three_contacts_and_two_domains_flag_with_both_routes() -> None:
    a = assess(RULE, 3, ["mental_health", "substance_misuse"])
    assert a.flagged and a.routes == [LINK_WORKER, INTEGRATED_OFFENDER_MANAGEMENT]


def test_two_contacts_with_two_non_housing_domains_do_not_flag() -> None:
    assert not assess(RULE, 2, ["mental_health", "substance_misuse"]).flagged


def test_three_contacts_with_one_domain_do_not_flag() -> None:
    assert not assess(RULE, 5, ["mental_health"]).flagged


def test_housing_with_another_need_on_a_repeat_contact_flags_link_worker_only() -> None:
    a = assess(RULE, 2, ["housing", "learning_disability"])
    assert a.flagged and a.routes == [LINK_WORKER]
    assert "housing" in a.reasons[0]


def test_housing_alone_or_first_contact_does_not_flag() -> None:
    assert not assess(RULE, 4, ["housing"]).flagged
    assert not assess(RULE, 1, ["housing", "mental_health"]).flagged


def test_housing_rule_can_be_switched_off() -> None:
    rule = McnRule(min_contacts=3, min_domains=2, housing_with_any=False)
    assert not assess(rule, 2, ["housing", "mental_health"]).flagged
    assert "housing" not in rule.describe()
