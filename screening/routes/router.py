from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from screening.dependencies import RegistryDep, SessionDep
from screening.routes import service
from screening.routes.dependencies import (
    DecidableScreen,
    ModelNeedsDep,
    ReferralScreen,
    ReferralWriter,
    RoutesDecider,
    RoutesReader,
    RoutesScreen,
    RulebookDep,
)
from screening.routes.schemas import (
    CatalogueRead,
    DecisionCreate,
    DecisionsRead,
    NeedPut,
    NeedRead,
    RecommendationRead,
    ReferralRead,
    ReferralUpdate,
)

RouteId = Annotated[str, Path(max_length=64, pattern=r"^[a-z][a-z0-9_]*$", description="Route or need domain id.")]

router = APIRouter(prefix="/api/v1/screens", tags=["routes"])
catalogue_router = APIRouter(prefix="/api/v1/routes", tags=["routes"])


@catalogue_router.get("", response_model=CatalogueRead)
def get_catalogue(book: RulebookDep, user: RoutesReader) -> CatalogueRead:
    """Every route, need domain and reason code in force, with the rules and directory versions."""
    return service.catalogue(book)


@router.get("/{screen_id}/recommendations", response_model=list[RecommendationRead])
def get_recommendations(
    screen: RoutesScreen, session: SessionDep, registry: RegistryDep, book: RulebookDep, user: RoutesReader,
    model: ModelNeedsDep,
) -> list[RecommendationRead]:
    """Recommended routes, most urgent first, each with its reasons, local service and decision."""
    return service.recommendations(session, registry, book, user, screen, model)


@router.post("/{screen_id}/recommendations/{route}/decision", response_model=RecommendationRead)
def decide_route(
    route: RouteId, body: DecisionCreate, screen: DecidableScreen, session: SessionDep, registry: RegistryDep,
    book: RulebookDep, user: RoutesDecider, model: ModelNeedsDep,
) -> RecommendationRead:
    """Accept or decline a route (accepting one not proposed adds it). Draft screens only."""
    return service.decide_route(session, registry, book, user, screen, route, body, model)


@router.put("/{screen_id}/needs/{domain}", response_model=NeedRead)
def decide_need(
    domain: RouteId, body: NeedPut, screen: DecidableScreen, session: SessionDep, registry: RegistryDep,
    book: RulebookDep, user: RoutesDecider, model: ModelNeedsDep,
) -> NeedRead:
    """Confirm or override the proposed need in one domain. Draft screens only."""
    return service.decide_need(session, registry, book, user, screen, domain, body, model)


@router.get("/{screen_id}/decisions", response_model=DecisionsRead)
def get_decisions(
    screen: RoutesScreen, session: SessionDep, registry: RegistryDep, book: RulebookDep, user: RoutesReader,
    model: ModelNeedsDep,
) -> DecisionsRead:
    """Needs and routes: what the system proposed and what the practitioner decided, side by side."""
    return service.decisions_view(session, registry, book, user, screen, model)


@router.get("/{screen_id}/referrals", response_model=list[ReferralRead])
def list_referrals(
    screen: ReferralScreen, session: SessionDep, book: RulebookDep, user: ReferralWriter
) -> list[ReferralRead]:
    """Referrals made from accepted routes, most urgent first, with their outcome so far."""
    return service.list_referrals(session, book, user, screen)


@router.patch("/{screen_id}/referrals/{referral_id}", response_model=ReferralRead)
def update_referral(
    referral_id: int, body: ReferralUpdate, screen: ReferralScreen, session: SessionDep, book: RulebookDep,
    user: ReferralWriter,
) -> ReferralRead:
    """Record a referral's outcome (allowed after the screen is final: outcomes come in later)."""
    return service.update_referral(session, book, user, screen, referral_id, body)
