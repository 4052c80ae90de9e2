from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from screening.auth.dependencies import Authorize
from screening.auth.policy import Permission
from screening.auth.schemas import Principal
from screening.dependencies import SessionDep, SettingsDep
from screening.web.reports import service
from screening.web.reports.schemas import SharedReportPage

router = APIRouter(prefix="/api/v1/court-reports", tags=["court reports"])
CourtReader = Annotated[Principal, Depends(Authorize(Permission.court_reports_list))]


@router.get("", response_model=SharedReportPage)
def list_shared_reports(
    session: SessionDep,
    settings: SettingsDep,
    user: CourtReader,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SharedReportPage:
    """Reports shared with the court: final screens whose consent includes the court (your suites, if you have any)."""
    return service.shared_reports(session, user, limit=min(limit, settings.page_size_max), offset=offset)
