"""A screen's answers as `QuestionnaireResponse`s, and a posted response back into answers.

The conversion is exact both ways: an ordinal answer (the option index) is the option's Coding, a
yes/no answer is a boolean, so export, import and export again gives the same answers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from screening.errors import FieldError
from screening.fhir.questionnaire import Resource, canonical, option_codings, total_link_id
from screening.fhir.schemas import AnswerIn, ItemIn, QuestionnaireResponseIn
from screening.instruments.registry import Registry
from screening.instruments.schemas import Instrument, Item, ItemType
from screening.instruments.scoring import missing_items, score


def response_items(
    registry: Registry, base_url: str, instrument: Instrument, answers: Mapping[str, Any]
) -> list[Resource]:
    """The answered items of one instrument, in its order, with the calculated total when it is complete."""
    out: list[Resource] = []
    for item in instrument.items:
        if item.id not in answers:
            continue
        value = answers[item.id]
        if item.type is ItemType.boolean:
            answer: Resource = {"valueBoolean": bool(value)}
        else:
            answer = {"valueCoding": option_codings(registry, base_url, item)[int(value)]}
        out.append({"linkId": item.id, "text": item.prompt, "answer": [answer]})
    if not missing_items(instrument, answers):
        total = score(instrument, answers).total
        out.append({"linkId": total_link_id(instrument), "text": f"{instrument.title}: total score",
                    "answer": [{"valueInteger": total}]})
    return out


def build_response(
    registry: Registry,
    base_url: str,
    instrument: Instrument,
    answers: Mapping[str, Any],
    *,
    resource_id: str,
    status: str,
    subject: Resource,
    authored: str,
) -> Resource:
    response: Resource = {
        "resourceType": "QuestionnaireResponse",
        "id": resource_id,
        "questionnaire": f"{canonical(base_url, instrument)}|{instrument.version}",
        "status": status,
        "subject": subject,
        "authored": authored,
    }
    items = response_items(registry, base_url, instrument, answers)
    if items:  # FHIR JSON forbids empty arrays
        response["item"] = items
    return response


# --- Import ------------------------------------------------------------------------------------------


def find_instrument(registry: Registry, base_url: str, questionnaire: str) -> Instrument | None:
    """The instrument a response's `questionnaire` canonical names (version suffix allowed)."""
    url, _, _version = questionnaire.partition("|")
    for instrument in registry:
        if url == canonical(base_url, instrument):
            return instrument
    return None


def _flatten(items: list[ItemIn]) -> Iterator[ItemIn]:
    """Every answerable item; a group (child items, no answer of its own) only contributes its children."""
    for item in items:
        if not (item.item and not item.answer):
            yield item
        if item.item:
            yield from _flatten(item.item)
        for answer in item.answer or []:
            if answer.item:
                yield from _flatten(answer.item)


def _field(link_id: str) -> str:
    return f"item.{link_id}"


def _value(registry: Registry, base_url: str, item: Item, answer: AnswerIn) -> tuple[Any, str | None]:
    """(answer value, None) or (None, why the FHIR answer does not fit the item)."""
    values = answer.values()
    if item.type is ItemType.boolean:
        if set(values) != {"valueBoolean"}:
            return None, f"must be answered with valueBoolean, got {', '.join(sorted(values)) or 'no value'}"
        return values["valueBoolean"], None
    if set(values) != {"valueCoding"}:
        return None, f"must be answered with valueCoding, got {', '.join(sorted(values)) or 'no value'}"
    coding = values["valueCoding"]
    for index, option in enumerate(option_codings(registry, base_url, item)):
        if coding.code == option["code"] and coding.system in (None, option["system"]):
            return index, None
    codes = ", ".join(o["code"] for o in option_codings(registry, base_url, item))
    return None, f"is not one of the item's answer options ({codes})"


def answers_from_response(
    registry: Registry, base_url: str, body: QuestionnaireResponseIn
) -> tuple[Instrument | None, dict[str, Any], list[FieldError]]:
    """The instrument, the answers the response gives, and every problem found (each naming its linkId)."""
    errors: list[FieldError] = []
    instrument = find_instrument(registry, base_url, body.questionnaire)
    if instrument is None:
        known = ", ".join(canonical(base_url, i) for i in registry)
        message = f"not one of this service's Questionnaires ({known})"
        return None, {}, [FieldError(field="questionnaire", message=message)]
    if body.status == "entered-in-error":
        errors.append(FieldError(field="status", message="a response entered in error cannot fill a screen"))
    if body.implicitRules or body.modifierExtension:
        errors.append(FieldError(field="modifierExtension",
                                 message="modifier extensions and implicit rules are not supported"))
    items = {it.id: it for it in instrument.items}
    # Display items and the calculated total are ours: accepted, never stored (the server scores).
    ignored = {total_link_id(instrument), f"{instrument.id}_preamble", f"{instrument.id}_unit_note"}
    answers: dict[str, Any] = {}
    seen: set[str] = set()
    for given in _flatten(body.item):
        link_id = given.linkId
        if link_id in seen:
            errors.append(FieldError(field=_field(link_id), message="appears more than once"))
            continue
        seen.add(link_id)
        if given.modifierExtension or any(a.modifierExtension for a in given.answer or []):
            errors.append(FieldError(field=_field(link_id), message="modifier extensions are not supported"))
            continue
        if link_id in ignored:
            continue
        item = items.get(link_id)
        if item is None:
            errors.append(FieldError(field=_field(link_id), message=f"unknown linkId: not an item of {instrument.id}"))
            continue
        if not given.answer:
            continue
        if len(given.answer) > 1:
            errors.append(FieldError(field=_field(link_id), message="takes one answer, got several"))
            continue
        value, problem = _value(registry, base_url, item, given.answer[0])
        if problem:
            errors.append(FieldError(field=_field(link_id), message=problem))
        else:
            answers[link_id] = value
    return instrument, answers, errors
