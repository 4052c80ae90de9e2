"""The commissioners' dashboard and monthly board report, rendered from the suppressed figures.

Jinja2 with autoescaping on; only published (already suppressed) cells reach the templates, and no
template adds cells together, since a sum of published cells could reveal a withheld one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from screening.config import Settings
from screening.contacts.mcn import McnRule
from screening.insights import charts, suppression
from screening.insights.schemas import EquityRow, InsightsSummary, SummaryRow
from screening.insights.service import ALL_SUITES, Figures
from screening.insights.views import summary

TEMPLATES = Path(__file__).parent / "templates"
_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

DOMAIN_LABELS = {
    "mental_health": "Mental health",
    "suicide_risk": "Suicide / self-harm risk",
    "substance_misuse": "Drugs or alcohol",
    "learning_disability": "Learning disability / communication",
    "physical_health": "Physical health",
    "housing": "Housing",
}


SHORT_LABELS = {"suicide_risk": "Self-harm risk", "learning_disability": "LD / communication"}


def short_label(domain: str) -> str:
    return SHORT_LABELS.get(domain, label(domain))


def label(domain: str) -> str:
    return DOMAIN_LABELS.get(domain, domain.replace("_", " ").capitalize())


@dataclass(frozen=True)
class Page:
    title: str
    subtitle: str
    summary: InsightsSummary
    focus: str
    trend: list[SummaryRow]
    latest: SummaryRow
    latest_rows: list[SummaryRow]
    equity: list[EquityRow]
    charts: list[charts.BarChart]
    mcn_rule: str
    marker: str
    threshold: int
    # The service's Content-Security-Policy (style-src 'self') blocks inline styles in a browser, so
    # pages link the stylesheet; WeasyPrint renders from a string with no server, so the PDF inlines it.
    inline_css: str | None = None


@cache
def stylesheet() -> str:
    return (TEMPLATES / "insights.css").read_text(encoding="utf-8")


def _page(f: Figures, settings: Settings, suite: str | None, title: str, *, inline_css: bool = False) -> Page:
    s = summary(f, suite)
    focus = suite or ALL_SUITES
    trend = [r for r in s.rows if r.custody_suite == focus]
    latest = trend[-1]
    months = [r.month for r in trend]
    figs = [
        charts.bar_chart("Screens opened, by month", months, [r.screens for r in trend]),
        charts.bar_chart("Declined screening, by month", months, [r.declined_rate for r in trend], percent=True),
        charts.bar_chart(f"Prevalence of each need, {latest.month}", [short_label(d) for d in s.need_domains],
                         [latest.needs[d].rate for d in s.need_domains], percent=True),
        charts.bar_chart("Repeat contact (of linked screens), by month", months,
                         [r.repeat_contact_rate for r in trend], percent=True),
        charts.bar_chart("Multiple and complex needs (count), by month", months,
                         [r.multiple_complex_needs for r in trend]),
    ]
    return Page(
        title=title, subtitle=f"{focus}, {s.from_} to {s.to}", summary=s, focus=focus, trend=trend, latest=latest,
        latest_rows=[r for r in s.rows if r.month == latest.month], charts=figs,
        equity=[e for e in s.equity if e.month == latest.month],
        mcn_rule=McnRule.from_settings(settings).describe(), marker=suppression.MARKER,
        threshold=suppression.THRESHOLD, inline_css=stylesheet() if inline_css else None,
    )


def render_dashboard(f: Figures, settings: Settings, suite: str | None, *, inline_css: bool = False) -> str:
    page = _page(f, settings, suite, "Liaison and diversion: commissioners' dashboard", inline_css=inline_css)
    return _env.get_template("dashboard.html").render(page=page, label=label)


def render_report(f: Figures, settings: Settings, *, inline_css: bool = False) -> str:
    page = _page(f, settings, None, f"Liaison and diversion: monthly report, {f.period.months[-1]}",
                 inline_css=inline_css)
    return _env.get_template("report.html").render(page=page, label=label)


def to_pdf(html: str) -> bytes:
    from weasyprint import HTML  # imported here: WeasyPrint loads system libraries, only reports need them

    pdf: bytes = HTML(string=html).write_pdf()
    return pdf
