"""Dependencies for routes, needs and referrals: the rulebook, the model's needs, and record access."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Request

from screening.auth.dependencies import Authorize
from screening.auth.policy import Permission, may_access_screen
from screening.auth.schemas import Principal
from screening.dependencies import SessionDep
from screening.errors import Forbidden, NotFound
from screening.routes.rulebook import Rulebook
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


def load_screen(session: SessionDep, screen_id: str, user: Principal) -> Screen:
    """The screen, if it exists and lies in one of the nurse's custody suites."""
    screen = session.get(Screen, screen_id)
    if screen is None:
        raise NotFound(f"No screen with id {screen_id}.")
    if not may_access_screen(user.role, list(user.custody_suites), screen.custody_suite):
        raise Forbidden("This screen belongs to a custody suite you do not work in.")
    return screen


def routes_screen(screen_id: str, session: SessionDep, user: RoutesReader) -> Screen:
    return load_screen(session, screen_id, user)


def decidable_screen(screen_id: str, session: SessionDep, user: RoutesDecider) -> Screen:
    return load_screen(session, screen_id, user)


def referral_screen(screen_id: str, session: SessionDep, user: ReferralWriter) -> Screen:
    return load_screen(session, screen_id, user)


RoutesScreen = Annotated[Screen, Depends(routes_screen)]
DecidableScreen = Annotated[Screen, Depends(decidable_screen)]
ReferralScreen = Annotated[Screen, Depends(referral_screen)]


def model_needs(request: Request, screen: RoutesScreen, session: SessionDep) -> dict[str, bool]:
    """The model's `needs_assessment` per domain for this screen; empty when no model is loaded.

    The model bundle (branch `model`) is read from `app.state.model` and offers
    `assess(answers, age=, sex=) -> {domain: DomainAssessment}`. The model sits on top of the
    instrument rules, never in place of them: if it is absent or fails, the rules still run without
    it and responses say `model_used: false`.
    """
    assess = getattr(getattr(request.app.state, "model", None), "assess", None)
    if not callable(assess):
        return {}
    answers = answer_values(session, screen.id)
    try:
        result = assess(answers, age=age_on(screen.date_of_birth, screen.created_at.date()), sex=screen.sex)
        return {domain: bool(a.needs_assessment) for domain, a in result.items()}
    except Exception as exc:  # noqa: BLE001 - a model fault must not stop the rules; logged by type only
        log.warning("model assessment failed for route rules: %s", type(exc).__name__)
        return {}


ModelNeedsDep = Annotated[dict[str, bool], Depends(model_needs)]
