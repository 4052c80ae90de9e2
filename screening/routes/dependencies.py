"""Dependencies for routes, needs and referrals: the rulebook, the model's needs, and record access."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from screening.auth.dependencies import Authorize
from screening.auth.policy import Permission
from screening.auth.schemas import Principal
from screening.dependencies import RegistryDep, SessionDep
from screening.model.service import ModelBundle
from screening.routes.rulebook import Rulebook
from screening.screens.dependencies import load_screen
from screening.screens.models import Screen
from screening.screens.service import age_on, answer_values

log = logging.getLogger("screening.routes")

RoutesReader = Annotated[Principal, Depends(Authorize(Permission.routes_read))]
RoutesDecider = Annotated[Principal, Depends(Authorize(Permission.routes_decide))]
ReferralWriter = Annotated[Principal, Depends(Authorize(Permission.referrals_write))]


def get_rulebook(request: Request) -> Rulebook:
    rulebook: Rulebook = request.app.state.rulebook
    return rulebook


RulebookDep = Annotated[Rulebook, Depends(get_rulebook)]


def routes_screen(screen_id: str, session: SessionDep, user: RoutesReader) -> Screen:
    return load_screen(session, screen_id, user)


def decidable_screen(screen_id: str, session: SessionDep, user: RoutesDecider) -> Screen:
    return load_screen(session, screen_id, user)


def referral_screen(screen_id: str, session: SessionDep, user: ReferralWriter) -> Screen:
    return load_screen(session, screen_id, user)


RoutesScreen = Annotated[Screen, Depends(routes_screen)]
DecidableScreen = Annotated[Screen, Depends(decidable_screen)]
ReferralScreen = Annotated[Screen, Depends(referral_screen)]


@dataclass(frozen=True)
class ModelNeeds:
    """What the served model says about a screen: per domain, whether a fuller assessment is needed."""

    version: str | None = None  # None: no model output was available
    needs: dict[str, bool] = field(default_factory=dict)


def model_needs(request: Request, screen: RoutesScreen, session: SessionDep, registry: RegistryDep) -> ModelNeeds:
    """The served model's `needs_assessment` per domain, for the rules' `model_need` conditions.

    The model sits on top of the instrument rules, never in place of them: if no model is loaded or it
    fails on this screen, the rules still run without it and responses say `model_used: false`.
    Ethnicity is not passed (monitoring only, never a model input).
    """
    bundle: ModelBundle | None = getattr(request.app.state, "model", None)
    if bundle is None:
        return ModelNeeds()
    answers = answer_values(session, screen.id)
    try:
        result = bundle.assess(answers, age=age_on(screen.date_of_birth, screen.created_at.date()), sex=screen.sex)
    except Exception as exc:  # noqa: BLE001 - a model fault must not stop the rules; logged by type only
        log.warning("model assessment failed for route rules: %s", type(exc).__name__)
        return ModelNeeds()
    # A domain none of whose questions were asked is left out: the model then sees only imputed values,
    # and its low, sensitivity-first thresholds would flag every unasked domain. A route must rest on
    # something the person said or the nurse saw, which she can check against the answers.
    asked = {registry[registry.owner[i]].domain for i in answers if i in registry.owner}
    return ModelNeeds(version=bundle.version,
                      needs={d: bool(a.needs_assessment) for d, a in result.items() if d in asked})


ModelNeedsDep = Annotated[ModelNeeds, Depends(model_needs)]
