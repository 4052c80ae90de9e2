from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from screening.auth.dependencies import Authorize
from screening.auth.policy import Permission, may_read_court_report
from screening.auth.schemas import Principal
from screening.dependencies import SessionDep
from screening.errors import Forbidden, NotFound
from screening.screens.models import Screen

ReportReader = Annotated[Principal, Depends(Authorize(Permission.court_report_read))]


def report_screen(screen_id: str, session: SessionDep, user: ReportReader) -> Screen:
    """The screen, if it exists and this user may read its court report (consent is checked after)."""
    screen = session.get(Screen, screen_id)
    if screen is None:
        raise NotFound(f"No screen with id {screen_id}.")
    if not may_read_court_report(user.role, list(user.custody_suites), screen.custody_suite):
        raise Forbidden("This screen belongs to a custody suite you do not work in.")
    return screen


ReportScreen = Annotated[Screen, Depends(report_screen)]
