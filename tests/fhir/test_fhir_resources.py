"""The FHIR builders without a database: Questionnaires validate as R4, and their SDC FHIRPath means what
the scoring engine means (evaluated by fhirpathpy against responses the export code builds)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhirpathpy import evaluate
from fhirpathpy.models import models
from hypothesis import given, settings
from hypothesis import strategies as st

from screening.fhir import terminology as t
from screening.fhir.example import example_bundle
from screening.fhir.questionnaire import build_questionnaire, total_link_id
from screening.fhir.response import answers_from_response, build_response
from screening.fhir.schemas import QuestionnaireResponseIn
from screening.instruments.registry import load_registry
from screening.instruments.schemas import Instrument, ItemType
from screening.instruments.scoring import is_enabled, score

BASE = "https://ld-screening.invalid/fhir"
REGISTRY = load_registry()
R4 = models["r4"]
DOCS = Path(__file__).resolve().parents[2] / "README.md"


def _q(instrument_id: str) -> dict[str, Any]:
    return build_questionnaire(REGISTRY, BASE, REGISTRY[instrument_id])


def _qr(instrument: Instrument, answers: dict[str, Any]) -> dict[str, Any]:
    return build_response(REGISTRY, BASE, instrument, answers, resource_id="r1", status="in-progress",
                          subject={"display": "test"}, authored="2026-01-01T00:00:00+00:00")


def _extension(item: dict[str, Any], url: str) -> str:
    (ext,) = [e for e in item.get("extension", []) if e["url"] == url]
    return str(ext["valueExpression"]["expression"])


def _answers(instrument: Instrument) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        it.id: st.booleans() if it.type is ItemType.boolean else st.integers(0, len(it.options) - 1)
        for it in instrument.items
    })


@pytest.mark.parametrize("instrument_id", REGISTRY.ids)
def test_every_instrument_is_a_valid_r4_questionnaire(instrument_id: str) -> None:
    instrument = REGISTRY[instrument_id]
    q = _q(instrument_id)
    Questionnaire.model_validate(q)
    questions = [i for i in q["item"] if i["type"] in ("choice", "boolean")]
    assert [i["linkId"] for i in questions] == [it.id for it in instrument.items]
    assert q["copyright"] == instrument.licence
    for fhir_item, item in zip(questions, instrument.items, strict=True):
        if item.type is ItemType.boolean:
            assert fhir_item["type"] == "boolean"
            assert "answerOption" not in fhir_item
        else:
            weights = [o["extension"][0] for o in fhir_item["answerOption"]]
            assert {w["url"] for w in weights} == {t.ORDINAL_VALUE}
            assert [w["valueDecimal"] for w in weights] == [o.points for o in item.options]
    total = q["item"][-1]
    assert total["linkId"] == total_link_id(instrument)
    assert total["readOnly"] is True


def test_loinc_codes_where_they_exist() -> None:
    assert _q("phq9")["code"][0]["code"] == "44249-1"
    assert _q("phq9")["item"][-1]["code"][0]["code"] == "44261-6"
    assert _q("gad7")["item"][-1]["code"][0]["code"] == "70274-6"
    assert _q("auditc")["item"][-1]["code"][0]["code"] == "75626-2"
    assert _q("audit")["item"][-1]["code"][0]["code"] == "75624-7"
    assert _q("dast10")["item"][-1]["code"][0]["code"] == "82667-7"
    phq9_items = [i for i in _q("phq9")["item"] if i["type"] == "choice"]
    assert phq9_items[8]["code"][0]["code"] == "44260-8"  # item 9: thoughts of being better off dead
    assert phq9_items[0]["answerOption"][3]["valueCoding"]["code"] == "LA6571-9"  # "Nearly every day"
    # No guessed codes: instruments without a LOINC code have none.
    assert "code" not in _q("bjmhs")
    assert "code" not in _q("risk")["item"][-1]


def test_audit_skip_logic_is_an_sdc_expression_that_matches_the_engine() -> None:
    """FHIR enableWhen cannot test a sum; AUDIT 4-10 carry an enableWhenExpression instead. Exhaustively, for
    every AUDIT-C answer combination (and with items missing), it agrees with the scoring engine."""
    audit = REGISTRY["audit"]
    q = _q("audit")
    items = {it.id: it for it in audit.items}
    audit_4 = next(i for i in q["item"] if i["linkId"] == "audit_4")
    assert "enableWhen" not in audit_4
    expression = _extension(audit_4, t.SDC_ENABLE_WHEN)
    choices = [None, 0, 1, 2, 3, 4]
    for a1, a2, a3 in itertools.product(choices, repeat=3):
        answers = {k: v for k, v in {"audit_1": a1, "audit_2": a2, "audit_3": a3}.items() if v is not None}
        qr = _qr(audit, answers)
        got = evaluate(qr, expression, {"resource": qr, "questionnaire": q}, model=R4)
        assert got == [is_enabled(items["audit_4"], items, answers)], answers


@pytest.mark.parametrize("instrument_id", REGISTRY.ids)
def test_calculated_total_expression_equals_the_scoring_engine(instrument_id: str) -> None:
    instrument = REGISTRY[instrument_id]
    q = _q(instrument_id)
    expression = _extension(q["item"][-1], t.SDC_CALCULATED)

    @settings(max_examples=10, deadline=None, derandomize=True)
    @given(_answers(instrument))
    def check(answers: dict[str, Any]) -> None:
        qr = _qr(instrument, answers)
        QuestionnaireResponse.model_validate(qr)
        got = evaluate(qr, expression, {"resource": qr, "questionnaire": q}, model=R4)
        assert got == [score(instrument, answers).total]

    check()


def test_native_enable_when_for_yes_conditions(tmp_path: Path) -> None:
    """A site's instrument whose skip logic is a plain yes uses FHIR's own enableWhen, not an expression."""
    (tmp_path / "site.yaml").write_text(
        "id: site\ntitle: Site questions\ndomain: other\nsection: other\nversion: '1'\npublished: false\n"
        "source: site\nlicence: site\nscoring: {method: sum}\npositive: {total_at_least: 1}\npositive_source: site\n"
        "items:\n"
        "  - {id: site_a, prompt: A, type: boolean}\n"
        "  - {id: site_b, prompt: B, type: boolean}\n"
        "  - {id: site_c, prompt: C, type: boolean, enable_when: {item_true: site_a}}\n"
        "  - {id: site_d, prompt: D, type: boolean, enable_when: {any: [{item_true: site_a}, {item_true: site_b}]}}\n",
        encoding="utf-8",
    )
    registry = load_registry(tmp_path)
    q = build_questionnaire(registry, BASE, registry["site"])
    Questionnaire.model_validate(q)
    by_id = {i["linkId"]: i for i in q["item"]}
    assert by_id["site_c"]["enableWhen"] == [{"question": "site_a", "operator": "=", "answerBoolean": True}]
    assert by_id["site_d"]["enableBehavior"] == "any"
    assert [c["question"] for c in by_id["site_d"]["enableWhen"]] == ["site_a", "site_b"]
    assert "extension" not in by_id["site_c"]


def test_docs_show_the_generated_example() -> None:
    """the README (FHIR section) must show exactly what `screening fhir-example` prints."""
    assert example_bundle() in DOCS.read_text(encoding="utf-8")


def _parse(items: list[dict[str, Any]], **top: Any) -> tuple[Any, dict[str, Any], dict[str, str]]:
    body = {"resourceType": "QuestionnaireResponse", "status": "in-progress",
            "questionnaire": f"{BASE}/Questionnaire/dast10|1.0.0", "item": items} | top
    QuestionnaireResponse.model_validate(body)  # every case is valid FHIR: the refusals are ours
    instrument, answers, errors = answers_from_response(REGISTRY, BASE, QuestionnaireResponseIn.model_validate(body))
    return instrument, answers, {e.field: e.message for e in errors}


def test_import_reads_nested_groups_and_ignores_the_total() -> None:
    group = {"linkId": "drugs", "item": [{"linkId": "dast10_1", "answer": [{"valueBoolean": True}]},
                                         {"linkId": "dast10_3", "answer": [{"valueBoolean": False}]}]}
    instrument, answers, errors = _parse([group, {"linkId": "dast10_total", "answer": [{"valueInteger": 9}]},
                                          {"linkId": "dast10_2"}])
    # A sender's grouping is transparent: the items inside it are read.
    assert errors == {}
    assert instrument is REGISTRY["dast10"]
    assert answers == {"dast10_1": True, "dast10_3": False}


def test_import_refusals_name_the_link_id() -> None:
    one = [{"valueBoolean": True}]
    _, _, errors = _parse([
        {"linkId": "dast10_1", "answer": one},
        {"linkId": "dast10_1", "answer": one},  # repeated
        {"linkId": "dast10_2", "answer": [{"valueBoolean": True}, {"valueBoolean": False}]},  # several answers
        {"linkId": "dast10_4", "answer": [{"valueCoding": {"code": "yes"}}]},  # wrong type for a boolean item
        {"linkId": "dast10_5", "answer": one, "modifierExtension": [{"url": "http://x.invalid", "valueBoolean": True}]},
    ], status="entered-in-error")
    assert set(errors) == {"status", "item.dast10_1", "item.dast10_2", "item.dast10_4", "item.dast10_5"}
    assert "valueBoolean" in errors["item.dast10_4"]
