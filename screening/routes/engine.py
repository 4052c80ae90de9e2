"""The rules engine: pure functions from a screen's facts to proposed routes and needs, with evidence.

Nothing here touches the database or the model: the caller passes the answers, the scores of complete
instruments, the age on the day of the screen, the consent in force and the model's needs as a plain
mapping (`{"mental_health": True, ...}`), so every rule can be tested on its own.
Screening favours sensitivity (misses are the costly error, DOMAIN.md section 1): a route is proposed
when any rule for it holds, and it takes the most urgent urgency among them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from screening.contacts import mcn
from screening.instruments.registry import Registry
from screening.instruments.schemas import ItemType, ScoreResult
from screening.routes.rulebook import (
    URGENCY_ORDER,
    AgeBetweenCond,
    AgeUnderCond,
    AllCond,
    AnyCond,
    BandInCond,
    Condition,
    ConsentCond,
    ItemAtLeastCond,
    ItemTrueCond,
    McnCond,
    ModelNeedCond,
    NoneOfCond,
    PositiveCond,
    Rulebook,
    TotalAtLeastCond,
    Urgency,
)


@dataclass(frozen=True)
class Evidence:
    source: str  # item | instrument | age | model | contacts
    ref: str  # item id | instrument id | "age" | model domain
    text: str


@dataclass(frozen=True)
class Facts:
    answers: Mapping[str, Any]
    scores: Mapping[str, ScoreResult]
    age: int
    consent: Mapping[str, bool] = field(default_factory=dict)
    model_needs: Mapping[str, bool] = field(default_factory=dict)
    # Repeat contact: linked contacts in the last 12 months (this one included) and the need domains
    # recorded across them (issue 8's contacts service); 1 and none for an unlinked screen.
    contacts: int = 1
    recorded_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Proposal:
    route: str
    title: str
    urgency: Urgency
    rules: tuple[str, ...]
    reasons: tuple[Evidence, ...]


def _item_text(registry: Registry, item_id: str, value: Any) -> str:
    item = registry.items[item_id]
    if item.type is ItemType.ordinal:
        return f"{item.prompt}: {item.options[int(value)].label.lower()}"
    return item.flag or item.prompt


def _instrument_text(score: ScoreResult, registry: Registry) -> str:
    title = registry[score.instrument_id].title
    band = f", {score.band_label.lower()}" if score.band_label else ""
    verdict = "threshold met" if score.positive else "threshold not met"
    return f"{title}: {verdict} (score {score.total} of {score.max_total}{band})"


def evaluate(cond: Condition, facts: Facts, registry: Registry) -> tuple[bool, list[Evidence]]:
    """Whether the condition holds, and the evidence that made it hold. Unanswered items never hold."""

    def cite(ok: bool, source: str, ref: str, auto: str, text: str | None) -> tuple[bool, list[Evidence]]:
        return ok, [Evidence(source, ref, text or auto)] if ok else []

    match cond:
        case ItemTrueCond(item_true=i, text=t):
            ok = facts.answers.get(i) is True
            return cite(ok, "item", i, _item_text(registry, i, True) if ok else "", t)
        case ItemAtLeastCond(item_at_least=body, text=t):
            value = facts.answers.get(body.item)
            ok = value is not None and registry.items[body.item].points(value) >= body.value
            return cite(ok, "item", body.item, _item_text(registry, body.item, value) if ok else "", t)
        case PositiveCond(instrument_positive=i, text=t):
            s = facts.scores.get(i)
            ok = s is not None and s.positive
            return cite(ok, "instrument", i, _instrument_text(s, registry) if ok and s else "", t)
        case TotalAtLeastCond(instrument_total_at_least=body, text=t):
            s = facts.scores.get(body.instrument)
            ok = s is not None and s.total >= body.value
            return cite(ok, "instrument", body.instrument, _instrument_text(s, registry) if ok and s else "", t)
        case BandInCond(instrument_band_in=body, text=t):
            s = facts.scores.get(body.instrument)
            ok = s is not None and s.band in body.bands
            return cite(ok, "instrument", body.instrument, _instrument_text(s, registry) if ok and s else "", t)
        case AgeUnderCond(age_under=n, text=t):
            return cite(facts.age < n, "age", "age", f"Aged {facts.age}", t)
        case AgeBetweenCond(age_between=r, text=t):
            return cite(r.min <= facts.age <= r.max, "age", "age", f"Aged {facts.age}", t)
        case ModelNeedCond(model_need=d, text=t):
            ok = facts.model_needs.get(d) is True
            return cite(ok, "model", d, f"The screening model suggests a fuller {d.replace('_', ' ')} assessment", t)
        case McnCond(multiple_complex_needs=m, text=t):
            verdict = mcn.assess(mcn.McnRule(m.min_contacts, m.min_domains, m.housing_with_any), facts.contacts,
                                 facts.recorded_domains)
            reason = "Multiple and complex needs: " + "; ".join(verdict.reasons)
            return cite(verdict.flagged, "contacts", "multiple_complex_needs", reason, t)
        case ConsentCond(consent=purpose):
            return facts.consent.get(purpose) is True, []
        case AnyCond(any=cs):
            results = [evaluate(c, facts, registry) for c in cs]
            # Every condition that holds is cited, not just the first: the nurse sees all the reasons.
            return any(ok for ok, _ in results), [e for ok, ev in results if ok for e in ev]
        case AllCond(all=cs):
            results = [evaluate(c, facts, registry) for c in cs]
            ok = all(ok for ok, _ in results)
            return ok, [e for _, ev in results for e in ev] if ok else []
        case NoneOfCond(none_of=cs):
            return not any(evaluate(c, facts, registry)[0] for c in cs), []
    raise TypeError(f"unknown condition {cond!r}")


def propose_routes(book: Rulebook, registry: Registry, facts: Facts) -> list[Proposal]:
    """Routes whose rules hold, most urgent first (then in the order the rules file lists routes)."""
    found: dict[str, tuple[Urgency, list[str], list[Evidence]]] = {}
    for rule in book.rules.rules:
        ok, evidence = evaluate(rule.when, facts, registry)
        if not ok:
            continue
        urgency, rule_ids, reasons = found.get(rule.route, (Urgency.routine, [], []))
        if URGENCY_ORDER[rule.urgency] < URGENCY_ORDER[urgency]:
            urgency = rule.urgency
        rule_ids.append(rule.id)
        seen = {(e.source, e.ref) for e in reasons}
        for e in evidence:
            if (e.source, e.ref) not in seen:
                reasons.append(Evidence(e.source, e.ref, f"{rule.reason}: {e.text}"))
                seen.add((e.source, e.ref))
        found[rule.route] = (urgency, rule_ids, reasons)
    order = list(book.rules.routes)
    proposals = [
        Proposal(route=r, title=book.rules.routes[r].title, urgency=u, rules=tuple(ids), reasons=tuple(ev))
        for r, (u, ids, ev) in found.items()
    ]
    return sorted(proposals, key=lambda p: (URGENCY_ORDER[p.urgency], order.index(p.route)))


def propose_needs(book: Rulebook, registry: Registry, facts: Facts) -> dict[str, tuple[bool, list[Evidence]]]:
    """Each need domain → (proposed, evidence)."""
    return {name: evaluate(need.when, facts, registry) for name, need in book.rules.needs.items()}


def scores_by_id(scores: list[ScoreResult]) -> dict[str, ScoreResult]:
    return {s.instrument_id: s for s in scores}
