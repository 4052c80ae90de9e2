"""Need domains of a screen, as its instrument results record them (not a practitioner's judgement).

A domain counts as a need when a fully answered instrument of that domain meets its published or
project referral threshold. The `social` instrument is a signposting checklist, so only its housing
item is carried as a domain: accommodation is the top unmet need of custody entrants (Samele 2021)
and one of the four needs that define "multiple and complex needs" (Revolving Doors Agency 2013).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from screening.instruments.registry import Registry
from screening.instruments.service import complete_scores
from screening.screens.models import Answer

HOUSING = "housing"
HOUSING_ITEM = "social_housing"
SIGNPOSTING_DOMAINS = frozenset({"social"})


# The order figures are shown in: the needs L&D services are commissioned for first (NHS England L&D
# specification), then any domain a site's own instrument adds, housing last.
PREFERRED_ORDER = ("mental_health", "suicide_risk", "substance_misuse", "learning_disability", "physical_health")


def domains(registry: Registry) -> list[str]:
    """Every need domain this deployment can record, in a stable order, housing last."""
    present = {inst.domain for inst in registry} - SIGNPOSTING_DOMAINS
    ordered = [d for d in PREFERRED_ORDER if d in present]
    ordered += [inst.domain for inst in registry if inst.domain in present and inst.domain not in ordered]
    return [*dict.fromkeys(ordered), HOUSING]


def need_domains(registry: Registry, answers: Mapping[str, Any]) -> list[str]:
    """The need domains the answers show, in `domains()` order."""
    found = {registry[s.instrument_id].domain for s in complete_scores(registry, answers) if s.positive}
    if answers.get(HOUSING_ITEM) is True:
        found.add(HOUSING)
    return [d for d in domains(registry) if d in found]


def answers_by_screen(session: Session, screen_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Current answers of many screens in one query per 500 ids."""
    ids = list(screen_ids)
    out: dict[str, dict[str, Any]] = {i: {} for i in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for screen_id, item_id, value in session.execute(
            select(Answer.screen_id, Answer.item_id, Answer.value).where(Answer.screen_id.in_(chunk))
        ):
            out[screen_id][item_id] = value
    return out


def needs_by_screen(session: Session, registry: Registry, screen_ids: Iterable[str]) -> dict[str, list[str]]:
    return {sid: need_domains(registry, a) for sid, a in answers_by_screen(session, screen_ids).items()}
