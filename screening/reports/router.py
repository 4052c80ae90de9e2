from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from screening.dependencies import RegistryDep, SessionDep
from screening.reports import service
from screening.reports.dependencies import ReportReader, ReportScreen
from screening.reports.schemas import ReportFormat
from screening.routes.dependencies import RulebookDep

router = APIRouter(prefix="/api/v1/screens", tags=["court reports"])

_MEDIA = {ReportFormat.html: "text/html; charset=utf-8", ReportFormat.pdf: "application/pdf"}


@router.get(
    "/{screen_id}/court-report",
    response_class=Response,
    responses={200: {"content": {"text/html": {}, "application/pdf": {}}, "description": "The report."}},
)
def court_report(
    screen: ReportScreen, session: SessionDep, registry: RegistryDep, book: RulebookDep, user: ReportReader,
    format: Annotated[ReportFormat, Query(description="`html` (default) or `pdf`.")] = ReportFormat.html,
) -> Response:
    """The court information report of a final screen, if the person agreed to share with the court."""
    document = service.court_report(session, registry, book, user, screen, format)
    headers = {"Cache-Control": "no-store"}
    if format is ReportFormat.pdf:
        headers["Content-Disposition"] = f'inline; filename="court-report-{screen.id}.pdf"'
    return Response(document, media_type=_MEDIA[format], headers=headers)
