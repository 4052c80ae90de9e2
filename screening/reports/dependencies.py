from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from screening.auth.dependencies import Authorize
from screening.auth.policy import Permission, may_read_court_report
from screening.auth.schemas import Principal
from screening.dependencies import SessionDep
from screening.screens.dependencies import load_screen
from screening.screens.models import Screen

ReportReader = Annotated[Principal, Depends(Authorize(Permission.court_report_read))]


def report_screen(screen_id: str, session: SessionDep, user: ReportReader) -> Screen:
    """The screen, if it exists and this user may read its court report (consent is checked after)."""
    return load_screen(session, screen_id, user, rule=may_read_court_report)


ReportScreen = Annotated[Screen, Depends(report_screen)]
