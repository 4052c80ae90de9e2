from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from screening.audit import service as audit
from screening.dependencies import RegistryDep, SessionDep, SettingsDep
from screening.errors import Invalid
from screening.screens import service
from screening.screens.dependencies import ReadableScreen, ScreenReader, ScreenWriter, WritableScreen
from screening.screens.models import ScreenStatus
from screening.screens.schemas import AnswerHistoryEntry, AnswersPatch, ConsentPut, ScreenCreate, ScreenPage, ScreenRead

router = APIRouter(prefix="/api/v1/screens", tags=["screens"])


@router.post("", response_model=ScreenRead, status_code=status.HTTP_201_CREATED)
def create_screen(
    body: ScreenCreate,
    response: Response,
    session: SessionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    user: ScreenWriter,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> ScreenRead:
    """Open a draft screen for a custody episode. Retrying with the same Idempotency-Key returns the same screen."""
    if idempotency_key is not None and not idempotency_key.strip():
        raise Invalid("Idempotency-Key must not be blank.")
    screen, created = service.create_screen(
        session, user, body, idempotency_key, settings.person_key.get_secret_value(),
        [k.get_secret_value() for k in settings.person_key_previous],
    )
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/api/v1/screens/{screen.id}"
    return service.read_screen(session, registry, screen)


@router.get("", response_model=ScreenPage)
def list_screens(
    session: SessionDep,
    settings: SettingsDep,
    user: ScreenReader,
    status_: Annotated[ScreenStatus | None, Query(alias="status")] = None,
    suite: Annotated[str | None, Query(max_length=64)] = None,
    created_on: Annotated[date | None, Query(description="Only screens opened on this day (UTC).")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ScreenPage:
    """Screens of your custody suites, drafts first, newest first."""
    return service.list_screens(session, user, status=status_, suite=suite, created_on=created_on,
                                limit=min(limit, settings.page_size_max), offset=offset)


@router.get("/{screen_id}", response_model=ScreenRead)
def get_screen(screen: ReadableScreen, session: SessionDep, registry: RegistryDep, user: ScreenReader) -> ScreenRead:
    """The screen with its answers, consent, instrument scores and progress."""
    audit.record(session, user.actor, "screen.read", "screen", screen.id)
    return service.read_screen(session, registry, screen)


@router.patch("/{screen_id}/answers", response_model=ScreenRead)
def patch_answers(
    body: AnswersPatch, screen: WritableScreen, session: SessionDep, registry: RegistryDep, user: ScreenWriter
) -> ScreenRead:
    """Merge answers into the screen. One invalid value rejects the whole request and changes nothing."""
    screen = service.patch_answers(session, user, registry, screen, body.answers, body.expected_revisions)
    return service.read_screen(session, registry, screen)


@router.put("/{screen_id}/consent", response_model=ScreenRead)
def put_consent(
    body: ConsentPut, screen: WritableScreen, session: SessionDep, registry: RegistryDep, user: ScreenWriter
) -> ScreenRead:
    """Record consent and capacity. Declining screening is recorded as the screen's outcome."""
    screen = service.set_consent(session, user, screen, body)
    return service.read_screen(session, registry, screen)


@router.post("/{screen_id}/finalise", response_model=ScreenRead)
def finalise(screen: WritableScreen, session: SessionDep, registry: RegistryDep, user: ScreenWriter) -> ScreenRead:
    """Close the screen; it becomes read-only."""
    screen = service.finalise(session, user, screen)
    return service.read_screen(session, registry, screen)


@router.get("/{screen_id}/answers/history", response_model=list[AnswerHistoryEntry])
def answers_history(screen: ReadableScreen, session: SessionDep, user: ScreenReader) -> list[AnswerHistoryEntry]:
    """Every change to the screen's answers, oldest first, with who and when."""
    audit.record(session, user.actor, "screen.answers.history", "screen", screen.id)
    return service.answer_history(session, screen.id)
