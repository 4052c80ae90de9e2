"""Dependencies for routes, needs and referrals: the rulebook, the model's needs, and record access."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from screening.auth.dependencies import Authorize, Transact, Work
from screening.auth.policy import Permission
from screening.auth.schemas import Principal
from screening.instruments.registry import Registry
from screening.model.service import ModelBundle
from screening.routes.rulebook import Rulebook
from screening.screens.models import Screen
from screening.screens.service import age_on, answer_values

log = logging.getLogger("screening.routes")

RoutesReader = Annotated[Principal, Depends(Authorize(Permission.routes_read))]


async def get_rulebook(request: Request) -> Rulebook:  # no I/O: not worth a thread-pool hop
    rulebook: Rulebook = request.app.state.rulebook
    return rulebook


RulebookDep = Annotated[Rulebook, Depends(get_rulebook)]


# Each route's unit of work (user check, policy, work, audit, commit) runs in one thread-pool call,
# as on the screens routes (see screening.auth.dependencies.Work).
RoutesReadWork = Annotated[Work, Depends(Transact(Permission.routes_read))]
RoutesDecideWork = Annotated[Work, Depends(Transact(Permission.routes_decide))]
ReferralWork = Annotated[Work, Depends(Transact(Permission.referrals_write))]


@dataclass(frozen=True)
class ModelNeeds:
    """What the served model says about a screen: per domain, whether a fuller assessment is needed."""

    version: str | None = None  # None: no model output was available
    needs: dict[str, bool] = field(default_factory=dict)


def model_needs(bundle: ModelBundle | None, session: Session, registry: Registry, screen: Screen) -> ModelNeeds:
    """The served model's `needs_assessment` per domain, for the rules' `model_need` conditions.

    The model sits on top of the instrument rules, never in place of them: if no model is loaded or it
    fails on this screen, the rules still run without it and responses say `model_used: false`.
    Ethnicity is not passed (monitoring only, never a model input).
    """
    if bundle is None:
        return ModelNeeds()
    return needs_of(bundle, registry, answer_values(session, screen.id),
                    age_on(screen.date_of_birth, screen.created_at.date()), screen.sex)


def needs_of(bundle: ModelBundle, registry: Registry, answers: Mapping[str, Any], age: int | None,
             sex: str | None) -> ModelNeeds:
    """`model_needs` for answers, age and sex already loaded."""
    try:
        result = bundle.assess(answers, age=age, sex=sex)
    except Exception as exc:  # noqa: BLE001 - a model fault must not stop the rules; logged by type only
        log.warning("model assessment failed for route rules: %s", type(exc).__name__)
        return ModelNeeds()
    # A domain none of whose questions were asked is left out: the model then sees only imputed values,
    # and its low, sensitivity-first thresholds would flag every unasked domain. A route must rest on
    # something the person said or the nurse saw, which she can check against the answers.
    asked = {registry[registry.owner[i]].domain for i in answers if i in registry.owner}
    return ModelNeeds(version=bundle.version,
                      needs={d: bool(a.needs_assessment) for d, a in result.items() if d in asked})
