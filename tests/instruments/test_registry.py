"""Instruments are data: a site changes a threshold, a prompt or adds an instrument without code."""

from __future__ import annotations

from pathlib import Path

import pytest

from screening.instruments.registry import SHIPPED_DIR, DefinitionError, load_registry
from screening.instruments.scoring import is_enabled, score
from screening.instruments.service import expected_items


def test_shipped_item_ids_follow_the_pinned_scheme() -> None:
    reg = load_registry()
    for inst, n in {"phq9": 9, "gad7": 7, "bjmhs": 8, "audit": 10, "dast10": 10}.items():
        assert [it.id for it in reg[inst].items] == [f"{inst}_{i}" for i in range(1, n + 1)]
    assert [it.id for it in reg["auditc"].items] == ["audit_1", "audit_2", "audit_3"]
    assert reg.owner["audit_1"] == "audit"


def test_every_definition_carries_source_version_and_licence() -> None:
    for inst in load_registry():
        assert inst.source and inst.version and inst.licence and inst.positive_source


def test_a_site_changes_a_threshold_and_a_prompt_by_editing_data(tmp_path: Path) -> None:
    text = (SHIPPED_DIR / "auditc.yaml").read_text()
    # A US site: AUDIT-C positive at 4 (DOMAIN.md: men 4 / women 3).
    (tmp_path / "auditc.yaml").write_text(text.replace("positive: {total_at_least: 5}", "positive: {total_at_least: 4}"))
    phq = (SHIPPED_DIR / "phq9.yaml").read_text().replace("Feeling tired or low on energy", "Tired, no energy")
    (tmp_path / "phq9.yaml").write_text(phq)
    shipped, site = load_registry(), load_registry(tmp_path)
    a = {"audit_1": 2, "audit_2": 1, "audit_3": 1}
    assert score(shipped["auditc"], a).positive is False
    assert score(site["auditc"], a).positive is True
    assert site["phq9"].item("phq9_4").prompt == "Tired, no energy"


def test_a_site_adds_an_instrument(tmp_path: Path) -> None:
    (tmp_path / "k6.yaml").write_text("""
id: k6
title: Kessler K6
domain: mental_health
section: mental_health
version: "1"
published: true
source: "Kessler RC et al. 2003"
licence: "free"
option_sets:
  f: &f
    - {label: None of the time, points: 0}
    - {label: A little, points: 1}
    - {label: Some, points: 2}
    - {label: Most, points: 3}
    - {label: All of the time, points: 4}
items:
  - {id: k6_1, prompt: Nervous, type: ordinal, options: *f}
  - {id: k6_2, prompt: Hopeless, type: ordinal, options: *f}
scoring: {method: sum}
positive: {total_at_least: 13}
positive_source: "K6 >= 13 suggests serious mental illness"
""")
    reg = load_registry(tmp_path)
    assert "k6" in reg and reg["k6"].max_total == 8


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("positive: {total_at_least: 10}", "positive: {item_true: phq9_99}"), "phq9_99"),
        (("- {name: severe, min: 20, max: 27", "- {name: severe, min: 21, max: 27"), "bands must cover"),
        (("type: ordinal, options: *freq}", "type: ordinal}"), "phq9"),
        (("id: phq9", "id: phq10"), "must match the file name"),
    ],
)
def test_a_broken_definition_fails_at_load_naming_the_problem(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    text = (SHIPPED_DIR / "phq9.yaml").read_text().replace(*edit, 1)
    (tmp_path / "phq9.yaml").write_text(text)
    with pytest.raises(DefinitionError, match=message):
        load_registry(tmp_path)


def test_audit_skip_logic_asks_the_rest_only_after_a_positive_auditc() -> None:
    reg = load_registry()
    audit5 = reg["audit"].item("audit_5")
    assert not is_enabled(audit5, reg.items, {})
    assert not is_enabled(audit5, reg.items, {"audit_1": 2, "audit_2": 1, "audit_3": 1})
    assert is_enabled(audit5, reg.items, {"audit_1": 2, "audit_2": 1, "audit_3": 2})
    low = expected_items(reg, {"audit_1": 0, "audit_2": 0, "audit_3": 0})
    high = expected_items(reg, {"audit_1": 4, "audit_2": 4, "audit_3": 4})
    assert "audit_4" not in low and "audit_10" not in low
    assert {f"audit_{i}" for i in range(4, 11)} <= set(high)
