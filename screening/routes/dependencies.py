"""Dependencies for routes, needs and referrals: the rulebook, the model's needs, and record access."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from screening.auth.dependencies import Authorize
from screening.auth.policy import Permission, may_access_screen
from screening.auth.schemas import Principal
from screening.dependencies import SessionDep
from screening.errors import Forbidden, NotFound
from screening.routes.rulebook import Rulebook
from screening.screens.models import Screen

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


def model_needs(screen: RoutesScreen) -> dict[str, bool]:
    """The model's `needs_assessment` per domain for this screen.

    Empty until the model bundle (branch `model`) is merged: rules with `model_need` conditions then
    simply do not fire, and every response says `model_used: false`.
    """
    return {}


ModelNeedsDep = Annotated[dict[str, bool], Depends(model_needs)]
