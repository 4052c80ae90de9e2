"""Instrument definitions as FHIR R4 `Questionnaire`s (with the SDC extensions a form filler needs).

Item linkIds are the service's item ids, so a response maps straight back onto a screen. Ordinal items
become `choice` items whose answer options carry their points as the `ordinalValue` extension; yes/no
items become `boolean` items. Skip logic uses FHIR's own `enableWhen` where it can say the rule, and
the SDC `enableWhenExpression` (FHIRPath) where it cannot: `enableWhen` compares one answer with a
constant, and AUDIT items 4-10 depend on the AUDIT-C total (items 1-3 summing to 5 or more).
"""

from __future__ import annotations

from typing import Any

from screening.fhir import terminology as t
from screening.instruments.registry import Registry
from screening.instruments.schemas import (
    AllOf,
    AnyOf,
    Instrument,
    Item,
    ItemAtLeast,
    ItemTrue,
    ItemType,
    Rule,
    SumAtLeast,
    TotalAtLeast,
)

Resource = dict[str, Any]


def canonical(base_url: str, instrument: Instrument) -> str:
    """The Questionnaire's canonical URL (without version)."""
    return t.local_system(base_url, f"Questionnaire/{instrument.id}")


def total_link_id(instrument: Instrument) -> str:
    return f"{instrument.id}_total"


def answer_system(base_url: str) -> str:
    return t.local_system(base_url, "CodeSystem/answers")


def option_codings(registry: Registry, base_url: str, item: Item) -> list[Resource]:
    """One Coding per option of an ordinal item, in option order (the index is the stored answer)."""
    owner = registry.owner.get(item.id, "")
    loinc = t.ANSWER_LISTS.get(owner)
    # The LOINC answer list applies only while the options still are that list (a site may load other wording).
    if loinc and [o.points for o in item.options] == [p for _, _, p in loinc]:
        return [{"system": t.LOINC, "code": code, "display": display} for code, display, _ in loinc]
    system = answer_system(base_url)
    return [{"system": system, "code": f"{item.id}-{i}", "display": o.label} for i, o in enumerate(item.options)]


# --- FHIRPath, evaluated by an SDC form filler against the response (%resource) -------------------


def _answer(link_id: str) -> str:
    return f"%resource.repeat(item).where(linkId='{link_id}').answer.value"


def points_expression(item: Item) -> str:
    """FHIRPath for the points an item's answer scores; empty while it is unanswered."""
    if item.type is ItemType.boolean:
        # DAST-10 item 3 is reverse-scored: a "no" scores the point.
        yes, no = (0, 1) if item.reverse else (1, 0)
        return f"{_answer(item.id)}.select(iif($this, {yes}, {no}))"
    return (
        f"%questionnaire.repeat(item).where(linkId='{item.id}').answerOption"
        f".where(valueCoding.code = {_answer(item.id)}.code).extension('{t.ORDINAL_VALUE}').value"
    )


def _sum(items: list[Item]) -> tuple[str, str]:
    """(collection of points, their sum) for a list of items."""
    parts = [f"({points_expression(it)})" for it in items]
    collection = parts[0] + "".join(f".combine({p})" for p in parts[1:])
    return collection, f"{collection}.aggregate($this + $total, 0)"


def rule_expression(rule: Rule, items: dict[str, Item]) -> str:
    """A skip-logic rule as a FHIRPath boolean; unanswered items never satisfy it (as in the scoring engine)."""
    match rule:
        case ItemTrue(item_true=i):
            return f"({_answer(i)} = true)"
        case ItemAtLeast(item_at_least=body):
            return f"(({points_expression(items[body.item])}) >= {body.value})"
        case SumAtLeast(sum_at_least=body):
            collection, total = _sum([items[i] for i in body.items])
            return f"({collection}.count() = {len(body.items)} and {total} >= {body.value})"
        case AnyOf(any=rules):
            return "(" + " or ".join(rule_expression(r, items) for r in rules) + ")"
        case AllOf(all=rules):
            return "(" + " and ".join(rule_expression(r, items) for r in rules) + ")"
        case TotalAtLeast():
            raise ValueError("a total cannot drive skip logic")
    raise TypeError(f"unknown rule {rule!r}")


def _native_enable_when(rule: Rule) -> tuple[list[Resource], str | None] | None:
    """The rule as plain `enableWhen` conditions, when it is a yes or a plain any/all of yeses."""
    match rule:
        case ItemTrue(item_true=i):
            return [{"question": i, "operator": "=", "answerBoolean": True}], None
        case AnyOf(any=rules) | AllOf(all=rules) if rules and all(isinstance(r, ItemTrue) for r in rules):
            conditions = [{"question": r.item_true, "operator": "=", "answerBoolean": True}
                          for r in rules if isinstance(r, ItemTrue)]
            return conditions, "any" if isinstance(rule, AnyOf) else "all"
    return None


def _expression(expression: str, description: str | None = None) -> Resource:
    value: Resource = {"language": "text/fhirpath", "expression": expression}
    if description:
        value["description"] = description
    return value


def _item(registry: Registry, base_url: str, item: Item, by_id: dict[str, Item]) -> Resource:
    out: Resource = {"linkId": item.id, "text": item.prompt}
    if item.id in t.ITEM_CODES:
        out["code"] = [{"system": t.LOINC, "code": t.ITEM_CODES[item.id]}]
    if item.type is ItemType.boolean:
        out["type"] = "boolean"
    else:
        out["type"] = "choice"
        out["answerOption"] = [
            {"valueCoding": coding, "extension": [{"url": t.ORDINAL_VALUE, "valueDecimal": option.points}]}
            for coding, option in zip(option_codings(registry, base_url, item), item.options, strict=True)
        ]
    if item.enable_when is None:
        out["required"] = True
    else:
        native = _native_enable_when(item.enable_when)
        if native is not None:
            conditions, behavior = native
            out["enableWhen"] = conditions
            if behavior:
                out["enableBehavior"] = behavior
        else:
            out["extension"] = [{"url": t.SDC_ENABLE_WHEN,
                                 "valueExpression": _expression(rule_expression(item.enable_when, by_id))}]
    return out


def build_questionnaire(registry: Registry, base_url: str, instrument: Instrument) -> Resource:
    """The instrument as a FHIR R4 Questionnaire."""
    by_id = {it.id: it for it in instrument.items}
    items: list[Resource] = []
    if instrument.preamble:
        items.append({"linkId": f"{instrument.id}_preamble", "type": "display", "text": instrument.preamble})
    if instrument.unit_note:
        items.append({"linkId": f"{instrument.id}_unit_note", "type": "display", "text": instrument.unit_note})
    items += [_item(registry, base_url, it, by_id) for it in instrument.items]
    _, total = _sum([by_id[i] for i in instrument.scored_items])
    total_item: Resource = {
        "linkId": total_link_id(instrument),
        "text": f"{instrument.title}: total score",
        "type": "integer",
        "readOnly": True,
        "extension": [{"url": t.SDC_CALCULATED, "valueExpression": _expression(
            total, f"Sum of the points of {', '.join(instrument.scored_items)}")}],
    }
    if instrument.id in t.TOTAL_CODES:
        code, display = t.TOTAL_CODES[instrument.id]
        total_item["code"] = [{"system": t.LOINC, "code": code, "display": display}]
    items.append(total_item)
    q: Resource = {
        "resourceType": "Questionnaire",
        "id": instrument.id,
        "url": canonical(base_url, instrument),
        "version": instrument.version,
        "name": "".join(ch for ch in instrument.id.upper() if ch.isalnum()),
        "title": instrument.title,
        "status": "active",
        "subjectType": ["Patient"],
        "description": f"{instrument.source} Referral threshold: {instrument.positive_source}",
        "copyright": instrument.licence,
        "item": items,
    }
    if instrument.id in t.PANEL_CODES:
        code, panel_name = t.PANEL_CODES[instrument.id]
        q["code"] = [{"system": t.LOINC, "code": code} | ({"display": panel_name} if panel_name else {})]
    return q
