from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import HTMLResponse

from screening.audit import service as audit
from screening.dependencies import RegistryDep, SessionDep, SettingsDep
from screening.insights import report, service, views
from screening.insights.dependencies import InsightsReader, PeriodDep
from screening.insights.schemas import InsightsSummary
from screening.routes.dependencies import RulebookDep

router = APIRouter(prefix="/api/v1/insights", tags=["insights"])
pages = APIRouter(tags=["insights"])

SuiteQuery = Annotated[str | None, Query(max_length=64, description="One custody suite; default: every suite.")]


class SummaryFormat(StrEnum):
    json = "json"
    csv = "csv"


class ReportFormat(StrEnum):
    html = "html"
    pdf = "pdf"


@router.get("/summary", response_model=InsightsSummary, responses={200: {"content": {"text/csv": {}}}})
def get_summary(
    period: PeriodDep, session: SessionDep, registry: RegistryDep, settings: SettingsDep, book: RulebookDep,
    user: InsightsReader,
    suite: SuiteQuery = None, format: SummaryFormat = SummaryFormat.json,
) -> InsightsSummary | Response:
    """Figures by month and custody suite; counts below 5, and figures that would reveal them, show as "<5"."""
    figures = service.compute(session, registry, settings, period, list(book.rules.needs))
    result = views.summary(figures, suite)
    audit.record(session, user.actor, "insights.summary", "insights", None, {"rows": len(result.rows)})
    if format is SummaryFormat.csv:
        name = f"insights-{result.from_}-{result.to}.csv"
        return Response(views.to_csv(result), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return result


@router.get("/report", response_class=HTMLResponse, responses={200: {"content": {"application/pdf": {}}}})
def get_report(
    session: SessionDep, registry: RegistryDep, settings: SettingsDep, book: RulebookDep, user: InsightsReader,
    month: Annotated[
        str | None, Query(max_length=7, description="Month, YYYY-MM; default: the last completed one.")
    ] = None,
    format: ReportFormat = ReportFormat.html,
) -> Response:
    """The monthly report for a commissioning board: the month and the eleven before it, HTML or PDF."""
    period = service.report_period(month)
    figures = service.compute(session, registry, settings, period, list(book.rules.needs))
    audit.record(session, user.actor, "insights.report", "insights", None, {"month": period.months[-1]})
    if format is ReportFormat.pdf:
        html = report.render_report(figures, settings, inline_css=True)
        return Response(report.to_pdf(html), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="report-{period.months[-1]}.pdf"'})
    return HTMLResponse(report.render_report(figures, settings))


@pages.get("/insights", response_class=HTMLResponse)
def dashboard(
    period: PeriodDep, session: SessionDep, registry: RegistryDep, settings: SettingsDep, book: RulebookDep,
    user: InsightsReader, suite: SuiteQuery = None,
) -> HTMLResponse:
    """Commissioners' dashboard: the summary's figures as charts and tables (no scripts, no CDN)."""
    figures = service.compute(session, registry, settings, period, list(book.rules.needs))
    audit.record(session, user.actor, "insights.dashboard", "insights", None, {"months": len(period.months)})
    return HTMLResponse(report.render_dashboard(figures, settings, suite))


@pages.get("/insights/insights.css", include_in_schema=False)
def stylesheet() -> Response:
    """The pages' stylesheet: public, it holds no data (a file, because the CSP forbids inline styles)."""
    return Response(report.stylesheet(), media_type="text/css; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=3600"})
