from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path
from sqlalchemy.orm import Session

from screening.auth.schemas import Principal
from screening.dependencies import RegistryDep
from screening.instruments.registry import Registry
from screening.model.dependencies import ModelDep
from screening.model.service import ModelBundle
from screening.routes import service
from screening.routes.dependencies import (
    ReferralWork,
    RoutesDecideWork,
    RoutesReader,
    RoutesReadWork,
    RulebookDep,
    model_needs,
)
from screening.routes.rulebook import Rulebook
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

T = TypeVar("T")

RouteId = Annotated[str, Path(max_length=64, pattern=r"^[a-z][a-z0-9_]*$", description="Route or need domain id.")]

router = APIRouter(prefix="/api/v1/screens", tags=["routes"])
catalogue_router = APIRouter(prefix="/api/v1/routes", tags=["routes"])


@catalogue_router.get("", response_model=CatalogueRead)
def get_catalogue(book: RulebookDep, user: RoutesReader) -> CatalogueRead:
    """Every route, need domain and reason code in force, with the rules and directory versions."""
    return service.catalogue(book)


def _on_screen(
    fn: Callable[..., T], screen_id: str, registry: Registry, book: Rulebook, bundle: ModelBundle, *args: Any
) -> Callable[[Session, Principal], T]:
    """The unit of work for `Work` (one thread-pool call): load the screen under the policy, ask the
    served model for its needs, then `fn(session, registry, book, user, screen, *args, needs)`."""

    def run(session: Session, user: Principal) -> T:
        screen = load_screen(session, screen_id, user)
        return fn(session, registry, book, user, screen, *args, model_needs(bundle, session, registry, screen))

    return run


@router.get("/{screen_id}/recommendations", response_model=list[RecommendationRead])
async def get_recommendations(
    screen_id: str, registry: RegistryDep, book: RulebookDep, bundle: ModelDep, work: RoutesReadWork
) -> list[RecommendationRead]:
    """Recommended routes, most urgent first, each with its reasons, local service and decision."""
    return await work(_on_screen(service.recommendations, screen_id, registry, book, bundle))


@router.post("/{screen_id}/recommendations/{route}/decision", response_model=RecommendationRead)
async def decide_route(
    screen_id: str, route: RouteId, body: DecisionCreate, registry: RegistryDep, book: RulebookDep,
    bundle: ModelDep, work: RoutesDecideWork,
) -> RecommendationRead:
    """Accept or decline a route (accepting one not proposed adds it). Draft screens only."""
    return await work(_on_screen(service.decide_route, screen_id, registry, book, bundle, route, body))


@router.put("/{screen_id}/needs/{domain}", response_model=NeedRead)
async def decide_need(
    screen_id: str, domain: RouteId, body: NeedPut, registry: RegistryDep, book: RulebookDep,
    bundle: ModelDep, work: RoutesDecideWork,
) -> NeedRead:
    """Confirm or override the proposed need in one domain. Draft screens only."""
    return await work(_on_screen(service.decide_need, screen_id, registry, book, bundle, domain, body))


@router.get("/{screen_id}/decisions", response_model=DecisionsRead)
async def get_decisions(
    screen_id: str, registry: RegistryDep, book: RulebookDep, bundle: ModelDep, work: RoutesReadWork
) -> DecisionsRead:
    """Needs and routes: what the system proposed and what the practitioner decided, side by side."""
    return await work(_on_screen(service.decisions_view, screen_id, registry, book, bundle))


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
