from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy.orm import Session

from screening.auth.schemas import Principal
from screening.dependencies import RegistryDep
from screening.routes import service
from screening.routes.dependencies import (
    ReferralWork,
    RoutesDecideWork,
    RoutesReader,
    RoutesReadWork,
    RulebookDep,
    ServedModelDep,
    model_needs,
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
from screening.screens.dependencies import load_screen

RouteId = Annotated[str, Path(max_length=64, pattern=r"^[a-z][a-z0-9_]*$", description="Route or need domain id.")]

router = APIRouter(prefix="/api/v1/screens", tags=["routes"])
catalogue_router = APIRouter(prefix="/api/v1/routes", tags=["routes"])


@catalogue_router.get("", response_model=CatalogueRead)
def get_catalogue(book: RulebookDep, user: RoutesReader) -> CatalogueRead:
    """Every route, need domain and reason code in force, with the rules and directory versions."""
    return service.catalogue(book)


# The screen-bound routes run their unit of work in one thread-pool call (`Work`), as the screens do.


@router.get("/{screen_id}/recommendations", response_model=list[RecommendationRead])
async def get_recommendations(
    screen_id: str, registry: RegistryDep, book: RulebookDep, bundle: ServedModelDep, work: RoutesReadWork
) -> list[RecommendationRead]:
    """Recommended routes, most urgent first, each with its reasons, local service and decision."""

    def recommend(session: Session, user: Principal) -> list[RecommendationRead]:
        screen = load_screen(session, screen_id, user)
        model = model_needs(bundle, session, registry, screen)
        return service.recommendations(session, registry, book, user, screen, model)

    return await work(recommend)


@router.post("/{screen_id}/recommendations/{route}/decision", response_model=RecommendationRead)
async def decide_route(
    screen_id: str, route: RouteId, body: DecisionCreate, registry: RegistryDep, book: RulebookDep,
    bundle: ServedModelDep, work: RoutesDecideWork,
) -> RecommendationRead:
    """Accept or decline a route (accepting one not proposed adds it). Draft screens only."""

    def decide(session: Session, user: Principal) -> RecommendationRead:
        screen = load_screen(session, screen_id, user)
        model = model_needs(bundle, session, registry, screen)
        return service.decide_route(session, registry, book, user, screen, route, body, model)

    return await work(decide)


@router.put("/{screen_id}/needs/{domain}", response_model=NeedRead)
async def decide_need(
    screen_id: str, domain: RouteId, body: NeedPut, registry: RegistryDep, book: RulebookDep,
    bundle: ServedModelDep, work: RoutesDecideWork,
) -> NeedRead:
    """Confirm or override the proposed need in one domain. Draft screens only."""

    def decide(session: Session, user: Principal) -> NeedRead:
        screen = load_screen(session, screen_id, user)
        model = model_needs(bundle, session, registry, screen)
        return service.decide_need(session, registry, book, user, screen, domain, body, model)

    return await work(decide)


@router.get("/{screen_id}/decisions", response_model=DecisionsRead)
async def get_decisions(
    screen_id: str, registry: RegistryDep, book: RulebookDep, bundle: ServedModelDep, work: RoutesReadWork
) -> DecisionsRead:
    """Needs and routes: what the system proposed and what the practitioner decided, side by side."""

    def view(session: Session, user: Principal) -> DecisionsRead:
        screen = load_screen(session, screen_id, user)
        model = model_needs(bundle, session, registry, screen)
        return service.decisions_view(session, registry, book, user, screen, model)

    return await work(view)


@router.get("/{screen_id}/referrals", response_model=list[ReferralRead])
async def list_referrals(screen_id: str, book: RulebookDep, work: ReferralWork) -> list[ReferralRead]:
    """Referrals made from accepted routes, most urgent first, with their outcome so far."""
    return await work(lambda session, user: service.list_referrals(session, book, user,
                                                                   load_screen(session, screen_id, user)))


@router.patch("/{screen_id}/referrals/{referral_id}", response_model=ReferralRead)
async def update_referral(
    screen_id: str, referral_id: int, body: ReferralUpdate, book: RulebookDep, work: ReferralWork
) -> ReferralRead:
    """Record a referral's outcome (allowed after the screen is final: outcomes come in later)."""
    return await work(lambda session, user: service.update_referral(
        session, book, user, load_screen(session, screen_id, user), referral_id, body))
