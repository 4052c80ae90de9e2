"""Turns the suppressed `Figures` table into what the API, CSV, report and dashboard show."""

from __future__ import annotations

import csv
import io
from typing import Any

from screening.insights import suppression
from screening.insights.schemas import InsightsSummary, NeedFigure, SummaryRow
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
    )


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
    )


def row_of_nothing(f: Figures, month: str, suite: str) -> SummaryRow:
    m = suppression.MARKER
    return SummaryRow(
        month=month, custody_suite=suite, screens=m, declined=m, completed=m, open=m, declined_rate=None,
        needs={d: NeedFigure(count=m, rate=None) for d in f.domains},
        co_occurrence={pair_name(a, b): m for a, b in f.pairs}, linked=m, linked_rate=None,
        repeat_contacts=m, repeat_contact_rate=None, multiple_complex_needs=m, multiple_complex_needs_rate=None,
    )


def _flat(r: SummaryRow) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in r.model_dump().items():
        if key == "needs":
            for d, fig in value.items():
                out[f"need.{d}"] = fig["count"]
                out[f"need.{d}.rate"] = fig["rate"]
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
