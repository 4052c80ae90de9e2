"""Commissioners' figures: by calendar month and custody suite, suppressed before they leave.

Everything is counted from the screens, answers and (through the need rules) instrument results in
the database; nothing is stored. Figures are computed for every suite of the period and suppressed as
one table before a `suite` filter is applied, so asking for one suite can never reveal more than the
full table does (no differencing between queries). Periods are whole, completed calendar months for
the same reason: a period ending "today" would change as each screen is opened.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import combinations

from sqlalchemy import select
from sqlalchemy.orm import Session

from screening.config import Settings
from screening.contacts import mcn
from screening.contacts.needs import domains as need_domains_of
from screening.contacts.needs import needs_by_screen
from screening.contacts.service import flag_for
from screening.db import utcnow
from screening.errors import FieldError, Invalid
from screening.insights import outcomes, suppression
from screening.instruments.registry import Registry
from screening.screens.linkage import REPEAT_WINDOW
from screening.screens.models import Screen, ScreenStatus
from screening.screens.service import age_on

ALL_SUITES = "All suites"
MAX_MONTHS = 36
STATUS_MEASURES = {ScreenStatus.declined.value: "declined", ScreenStatus.final.value: "completed",
                   ScreenStatus.draft.value: "open"}
_MONTH = re.compile(r"^(\d{4})-(\d{2})(?:-\d{2})?$")


def month_key(d: date | datetime) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def _parse_month(value: str, name: str) -> date:
    m = _MONTH.match(value)
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise Invalid(f"{name} must be a month, YYYY-MM.", errors=[FieldError(field=name, message="expected YYYY-MM")])
    return date(int(m.group(1)), int(m.group(2)), 1)


def _add_months(d: date, n: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 + n, 12)
    return date(y, m + 1, 1)


@dataclass(frozen=True)
class Period:
    first: date  # first day of the first month
    last: date  # first day of the last month

    @property
    def months(self) -> list[str]:
        out, d = [], self.first
        while d <= self.last:
            out.append(month_key(d))
            d = _add_months(d, 1)
        return out

    @property
    def start(self) -> datetime:
        return datetime(self.first.year, self.first.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        nxt = _add_months(self.last, 1)
        return datetime(nxt.year, nxt.month, 1, tzinfo=UTC)


def period(from_: str | None, to: str | None, today: date | None = None) -> Period:
    """Whole completed months; by default the twelve months before the current one."""
    this_month = (today or utcnow().date()).replace(day=1)
    last = _parse_month(to, "to") if to else _add_months(this_month, -1)
    first = _parse_month(from_, "from") if from_ else _add_months(last, -11)
    if last >= this_month:
        raise Invalid("Only completed months are reported: figures for a month still running would change "
                      "with every screen.", errors=[FieldError(field="to", message="must be before the current month")])
    if first > last:
        raise Invalid("from is after to.", errors=[FieldError(field="from", message="must not be after to")])
    if len(Period(first, last).months) > MAX_MONTHS:
        raise Invalid(f"At most {MAX_MONTHS} months at once.", errors=[FieldError(field="from", message="too early")])
    return Period(first, last)


def pair_name(a: str, b: str) -> str:
    return f"{a}+{b}"


@dataclass
class Figures:
    """The counts of a period as one table, with the set of cells withheld."""

    period: Period
    suites: list[str]
    domains: list[str]
    decision_domains: list[str] = field(default_factory=list)
    values: dict[Hashable, int] = field(default_factory=dict)
    hidden: set[Hashable] = field(default_factory=set)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return list(combinations(self.domains, 2))

    @property
    def measures(self) -> list[str]:
        return (["screens", *STATUS_MEASURES.values(), "linked", "repeat", "mcn"]
                + [f"need:{d}" for d in self.domains] + [f"pair:{pair_name(a, b)}" for a, b in self.pairs]
                + list(outcomes.MEASURES)
                + [f"{kind}:{d}" for kind in ("decided", "confirmed", "override") for d in self.decision_domains])

    def equity(self, month: str, group: tuple[str, str, str], measure: str) -> int | str:
        return suppression.shown(self.values[(month, group, measure)], (month, group, measure), self.hidden)

    def equity_rate(self, month: str, group: tuple[str, str, str]) -> float | None:
        return suppression.rate((month, group, "overrides"), (month, group, "need_decisions"), self.values, self.hidden)

    def count(self, month: str, suite: str, measure: str) -> int | str:
        return suppression.shown(self.values[(month, suite, measure)], (month, suite, measure), self.hidden)

    def rate(self, month: str, suite: str, num: str, den: str) -> float | None:
        return suppression.rate((month, suite, num), (month, suite, den), self.values, self.hidden)


def compute(
    session: Session, registry: Registry, settings: Settings, p: Period, decision_domains: Sequence[str] = ()
) -> Figures:
    """Count every figure of the period for every suite, then suppress the whole table.

    `decision_domains` are the need domains practitioners confirm or override (the rulebook's).
    """
    rows = session.execute(
        select(Screen.id, Screen.custody_suite, Screen.status, Screen.created_at, Screen.person_hash,
               Screen.date_of_birth, Screen.sex, Screen.ethnicity)
        .where(Screen.created_at >= p.start, Screen.created_at < p.end)
    ).all()
    suites = sorted({r.custody_suite for r in rows})
    figures = Figures(period=p, suites=suites, domains=need_domains_of(registry),
                      decision_domains=list(decision_domains))
    months = p.months
    for m in months:
        for s in [*suites, ALL_SUITES]:
            for measure in figures.measures:
                figures.values[(m, s, measure)] = 0
        for g in outcomes.equity_groups():
            for measure in outcomes.EQUITY_MEASURES:
                figures.values[(m, g, measure)] = 0

    # Earlier contacts of linked people, back to twelve months before the period starts.
    hashes = {r.person_hash for r in rows if r.person_hash}
    history: dict[str, list[Screen]] = defaultdict(list)
    if hashes:
        for s in session.scalars(select(Screen).where(
            Screen.person_hash.in_(hashes), Screen.created_at >= p.start - REPEAT_WINDOW, Screen.created_at < p.end
        )):
            history[s.person_hash].append(s)  # type: ignore[index]
    wanted = {r.id for r in rows if r.status == ScreenStatus.final} | {s.id for hs in history.values() for s in hs}
    needs = needs_by_screen(session, registry, wanted)
    rule = mcn.McnRule.from_settings(settings)

    def bump(month: str, suite: str, measure: str) -> None:
        figures.values[(month, suite, measure)] += 1
        figures.values[(month, ALL_SUITES, measure)] += 1

    for r in rows:
        m, s = month_key(r.created_at), r.custody_suite
        bump(m, s, "screens")
        bump(m, s, STATUS_MEASURES[r.status])
        if r.status == ScreenStatus.final:
            found = needs[r.id]
            for d in found:
                bump(m, s, f"need:{d}")
            for a, b in combinations(found, 2):  # `found` keeps domain order, so pairs match `figures.pairs`
                bump(m, s, f"pair:{pair_name(a, b)}")
        if r.person_hash:
            bump(m, s, "linked")
            me = next(x for x in history[r.person_hash] if x.id == r.id)
            earlier = [x for x in history[r.person_hash]
                       if x.id != r.id and r.created_at - REPEAT_WINDOW <= x.created_at < r.created_at]
            if earlier:
                bump(m, s, "repeat")
            if flag_for(registry, rule, me, earlier, needs)[1].flagged:
                bump(m, s, "mcn")

    ids = [r.id for r in rows]
    decided = outcomes.decisions(session, ids, set(decision_domains))
    for r in rows:
        m, s = month_key(r.created_at), r.custody_suite
        if r.status != ScreenStatus.final:
            continue  # decisions on a draft are unfinished; a declined screen has none
        route_rows, need_rows, referral_rows = decided.routes[r.id], decided.needs[r.id], decided.referrals[r.id]
        for measure in outcomes.screen_measures(route_rows, need_rows, referral_rows):
            bump(m, s, measure)
        for g in outcomes.groups_of(age_on(r.date_of_birth, r.created_at.date()), r.sex, r.ethnicity):
            for measure in outcomes.decision_measures(need_rows):
                figures.values[(m, g, measure)] += 1

    groups = []
    for m in months:
        for s in [*suites, ALL_SUITES]:
            groups.append(suppression.group((m, s, "screens"), [(m, s, x) for x in STATUS_MEASURES.values()]))
        for measure in figures.measures:
            groups.append(suppression.group((m, ALL_SUITES, measure), [(m, s, measure) for s in suites]))
        # Each equity breakdown adds up to the month's total of decisions and of overrides.
        for dimension in outcomes.EQUITY_DIMENSIONS:
            for measure in outcomes.EQUITY_MEASURES:
                groups.append(suppression.group(
                    (m, ALL_SUITES, measure), [(m, g, measure) for g in outcomes.equity_groups(dimension)]
                ))
    figures.hidden = suppression.suppress(figures.values, groups)
    return figures


def report_period(month: str | None) -> Period:
    """A board report covers its month and the eleven before, for the trend."""
    p = period(month, month)
    return period(month_key(_add_months(p.last, -11)), month_key(p.last))
