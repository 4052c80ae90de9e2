"""Turns the suppressed `Figures` table into what the API, CSV, report and dashboard show."""

from __future__ import annotations

import csv
import io
from typing import Any

from screening.insights import outcomes, suppression
from screening.insights.schemas import EquityRow, InsightsSummary, NeedFigure, SummaryRow
from screening.insights.service import ALL_SUITES, Figures, pair_name


def row(f: Figures, month: str, suite: str) -> SummaryRow:
    return SummaryRow(
        month=month, custody_suite=suite,
        screens=f.count(month, suite, "screens"), declined=f.count(month, suite, "declined"),
        completed=f.count(month, suite, "completed"), open=f.count(month, suite, "open"),
        declined_rate=f.rate(month, suite, "declined", "screens"),
        needs={d: NeedFigure(count=f.count(month, suite, f"need:{d}"),
                             rate=f.rate(month, suite, f"need:{d}", "completed")) for d in f.domains},
        co_occurrence={pair_name(a, b): f.count(month, suite, f"pair:{pair_name(a, b)}") for a, b in f.pairs},
        linked=f.count(month, suite, "linked"), linked_rate=f.rate(month, suite, "linked", "screens"),
        repeat_contacts=f.count(month, suite, "repeat"), repeat_contact_rate=f.rate(month, suite, "repeat", "linked"),
        multiple_complex_needs=f.count(month, suite, "mcn"),
        multiple_complex_needs_rate=f.rate(month, suite, "mcn", "linked"),
        routes_proposed=f.count(month, suite, "routes_proposed"), routes_accepted=f.count(month, suite, "routes_accepted"),
        route_acceptance_rate=f.rate(month, suite, "routes_accepted", "routes_proposed"),
        routes_added=f.count(month, suite, "routes_added"), referrals=f.count(month, suite, "referrals"),
        referrals_attended=f.count(month, suite, "referrals_attended"),
        referrals_engaged=f.count(month, suite, "referrals_engaged"),
        attendance_rate=f.rate(month, suite, "referrals_attended", "referrals"),
        engagement_rate=f.rate(month, suite, "referrals_engaged", "referrals"),
        confirmed_needs={d: NeedFigure(count=f.count(month, suite, f"confirmed:{d}"),
                                       rate=f.rate(month, suite, f"confirmed:{d}", "completed"))
                         for d in f.decision_domains},
        need_decisions=f.count(month, suite, "need_decisions"), overrides=f.count(month, suite, "overrides"),
        override_rate=f.rate(month, suite, "overrides", "need_decisions"),
        overrides_by_domain={d: NeedFigure(count=f.count(month, suite, f"override:{d}"),
                                           rate=f.rate(month, suite, f"override:{d}", f"decided:{d}"))
                             for d in f.decision_domains},
    )


def equity(f: Figures) -> list[EquityRow]:
    return [
        EquityRow(month=m, dimension=g[1], group=g[2], need_decisions=f.equity(m, g, "need_decisions"),
                  overrides=f.equity(m, g, "overrides"), override_rate=f.equity_rate(m, g))
        for m in f.period.months for g in outcomes.equity_groups()
    ]


def summary(f: Figures, suite: str | None) -> InsightsSummary:
    """Rows for one suite, or for every suite followed by each month's total."""
    suites = [suite] if suite else [*f.suites, ALL_SUITES]
    rows = [row(f, m, s) for m in f.period.months for s in suites if s == ALL_SUITES or s in f.suites]
    if suite and suite not in f.suites:
        # A suite with no screens in the period: shown as withheld zeros rather than "no such suite".
        rows = [row_of_nothing(f, m, suite) for m in f.period.months]
    return InsightsSummary(
        from_=f.period.months[0], to=f.period.months[-1], custody_suite=suite,
        suppressed_marker=suppression.MARKER, threshold=suppression.THRESHOLD, need_domains=f.domains, rows=rows,
        equity=equity(f),
    )


def row_of_nothing(f: Figures, month: str, suite: str) -> SummaryRow:
    m = suppression.MARKER
    return SummaryRow(
        month=month, custody_suite=suite, screens=m, declined=m, completed=m, open=m, declined_rate=None,
        needs={d: NeedFigure(count=m, rate=None) for d in f.domains},
        co_occurrence={pair_name(a, b): m for a, b in f.pairs}, linked=m, linked_rate=None,
        repeat_contacts=m, repeat_contact_rate=None, multiple_complex_needs=m, multiple_complex_needs_rate=None,
        routes_proposed=m, routes_accepted=m, route_acceptance_rate=None, routes_added=m, referrals=m,
        referrals_attended=m, referrals_engaged=m, attendance_rate=None, engagement_rate=None,
        confirmed_needs={d: NeedFigure(count=m, rate=None) for d in f.decision_domains}, need_decisions=m,
        overrides=m, override_rate=None,
        overrides_by_domain={d: NeedFigure(count=m, rate=None) for d in f.decision_domains},
    )


def _flat(r: SummaryRow) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in r.model_dump().items():
        if key == "needs":
            for d, fig in value.items():
                out[f"need.{d}"] = fig["count"]
                out[f"need.{d}.rate"] = fig["rate"]
        elif key in ("confirmed_needs", "overrides_by_domain"):
            prefix = "confirmed" if key == "confirmed_needs" else "override"
            for d, fig in value.items():
                out[f"{prefix}.{d}"] = fig["count"]
                out[f"{prefix}.{d}.rate"] = fig["rate"]
        elif key == "co_occurrence":
            for pair, count in value.items():
                out[f"both.{pair}"] = count
        else:
            out[key] = value
    return out


def to_csv(s: InsightsSummary) -> str:
    """The same rows as the JSON, one line each; withheld counts are `<5`, withheld rates empty."""
    buf = io.StringIO()
    flat = [_flat(r) for r in s.rows]
    if not flat:
        return ""
    writer = csv.DictWriter(buf, fieldnames=list(flat[0]), lineterminator="\n")
    writer.writeheader()
    for line in flat:
        writer.writerow({k: "" if v is None else v for k, v in line.items()})
    return buf.getvalue()
