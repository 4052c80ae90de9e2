from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from screening.audit import service as audit
from screening.audit.history import screen_history as load_history
from screening.audit.schemas import ScreenHistory
from screening.auth.dependencies import Authorize
from screening.auth.policy import Permission
from screening.auth.schemas import Principal
from screening.dependencies import SessionDep

router = APIRouter(prefix="/api/v1/screens", tags=["audit"])
Auditor = Annotated[Principal, Depends(Authorize(Permission.audit_read))]


@router.get("/{screen_id}/history", response_model=ScreenHistory)
def screen_history(
    screen_id: Annotated[str, Path(max_length=36)], session: SessionDep, admin: Auditor
) -> ScreenHistory:
    """Every audited access to and change of a screen, and every answer change (without values), oldest first."""
    history = load_history(session, screen_id)
    audit.record(session, admin.actor, "screen.history.read", "screen", screen_id)
    return history
