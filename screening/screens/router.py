"""Screens: the routes a tablet calls on every tap.

Each route is `async def`. Reading a screen and patching its answers, a tablet's commonest calls, run at
driver level (`HotRead`, `HotWrite`: see `screening.driver`); the others run their whole unit of work -
token check against the database, the policy, the change, its audit entry, the commit - in one
thread-pool call (`Transact`, see `screening.auth.dependencies`).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from sqlalchemy.orm import Session

from screening.audit import service as audit
from screening.auth.dependencies import BEARER
from screening.auth.schemas import Principal
from screening.dependencies import RegistryDep, SettingsDep
from screening.errors import Invalid
from screening.responses import json_response, model_response
from screening.screens import service
from screening.screens.dependencies import HotRead, HotWrite, ReadWork, WriteWork, load_screen
from screening.screens.models import ScreenStatus
from screening.screens.schemas import AnswerHistoryEntry, AnswersPatch, ConsentPut, ScreenCreate, ScreenPage, ScreenRead

router = APIRouter(prefix="/api/v1/screens", tags=["screens"])


@router.post("", response_model=ScreenRead, status_code=status.HTTP_201_CREATED)
async def create_screen(
    body: ScreenCreate,
    response: Response,
    registry: RegistryDep,
    settings: SettingsDep,
    work: WriteWork,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> ScreenRead:
    """Open a draft screen for a custody episode. Retrying with the same Idempotency-Key returns the same screen."""
    if idempotency_key is not None and not idempotency_key.strip():
        raise Invalid("Idempotency-Key must not be blank.")
    person_key = settings.person_key.get_secret_value()
    previous_keys = [k.get_secret_value() for k in settings.person_key_previous]

    def create(session: Session, user: Principal) -> tuple[str, bool, ScreenRead]:
        screen, created = service.create_screen(session, user, body, idempotency_key, person_key, previous_keys)
        return screen.id, created, service.read_screen(session, registry, screen, user)

    screen_id, created, read = await work(create)
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/screens/{screen_id}"
    return read


@router.get("", response_model=ScreenPage)
async def list_screens(
    settings: SettingsDep,
    work: ReadWork,
    status_: Annotated[ScreenStatus | None, Query(alias="status")] = None,
    suite: Annotated[str | None, Query(max_length=64)] = None,
    created_on: Annotated[date | None, Query(description="Only screens opened on this day (UTC).")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ScreenPage:
    """Screens of your custody suites, drafts first, newest first."""
    return await work(lambda session, user: service.list_screens(
        session, user, status=status_, suite=suite, created_on=created_on,
        limit=min(limit, settings.page_size_max), offset=offset))


@router.get("/{screen_id}", response_model=ScreenRead, openapi_extra=BEARER)
async def get_screen(screen_id: str, hot: HotRead) -> Response:
    """The screen with its answers, consent, instrument scores and progress."""
    return json_response(await service.read_screen_hot(hot, screen_id))


@router.patch("/{screen_id}/answers", response_model=ScreenRead, openapi_extra=BEARER)
async def patch_answers(screen_id: str, body: AnswersPatch, hot: HotWrite) -> Response:
    """Merge answers into the screen. One invalid value rejects the whole request and changes nothing."""
    return model_response(await service.patch_answers_hot(hot, screen_id, body.answers, body.expected_revisions))


@router.put("/{screen_id}/consent", response_model=ScreenRead)
async def put_consent(screen_id: str, body: ConsentPut, registry: RegistryDep, work: WriteWork) -> ScreenRead:
    """Record consent and capacity. Declining screening is recorded as the screen's outcome."""

    def consent(session: Session, user: Principal) -> ScreenRead:
        screen = service.set_consent(session, user, load_screen(session, screen_id, user), body)
        return service.read_screen(session, registry, screen, user)

    return await work(consent)


@router.post("/{screen_id}/finalise", response_model=ScreenRead)
async def finalise(screen_id: str, registry: RegistryDep, work: WriteWork) -> ScreenRead:
    """Close the screen; it becomes read-only."""

    def close(session: Session, user: Principal) -> ScreenRead:
        screen = service.finalise(session, user, load_screen(session, screen_id, user))
        return service.read_screen(session, registry, screen, user)

    return await work(close)


@router.get("/{screen_id}/answers/history", response_model=list[AnswerHistoryEntry])
async def answers_history(screen_id: str, work: ReadWork) -> list[AnswerHistoryEntry]:
    """Every change to the screen's answers, oldest first, with who and when."""

    def history(session: Session, user: Principal) -> list[AnswerHistoryEntry]:
        screen = load_screen(session, screen_id, user)
        audit.record(session, user.actor, "screen.answers.history", "screen", screen.id)
        return service.answer_history(session, screen.id)

    return await work(history)
