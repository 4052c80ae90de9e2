"""Outcome figures from practitioners' decisions and referrals (the routes domain's tables).

The decision in force is the latest row per screen and route, or per screen and need domain. Figures
count screens opened in the period, in the month they were opened, whenever the decision was made.
An override is a need decision that differs from what the system proposed (instrument results and
the model); overrides are counted by domain, and by sex, age band and ethnicity for equity review
(Ohio ORAS override practice; DOMAIN.md section 5).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from screening.routes.models import Decision, NeedDecision, Referral, ReferralStatus, RouteDecision

MEASURES = ("routes_proposed", "routes_accepted", "routes_added", "referrals", "referrals_attended",
            "referrals_engaged", "need_decisions", "overrides")
EQUITY_MEASURES = ("need_decisions", "overrides")
ATTENDED = frozenset({ReferralStatus.attended.value, ReferralStatus.engaged.value})

# Fixed group labels, never taken from the data: a label that appears only because one person holds
# it would itself disclose that person. Free-text ethnicity is mapped onto the ONS 2021 high-level
# groups by its first word; anything else is counted as "not recorded or not mapped".
SEXES = ("male", "female", "other", "unknown")
AGE_BANDS = ("under 18", "18-25", "26-39", "40-59", "60+")
ETHNIC_GROUPS = ("asian", "black", "mixed", "white", "other", "not recorded or not mapped")
EQUITY_DIMENSIONS = {"sex": SEXES, "age_band": AGE_BANDS, "ethnicity": ETHNIC_GROUPS}

Group = tuple[str, str, str]  # ("group", dimension, value): never equal to a suite name


def equity_groups(dimension: str | None = None) -> list[Group]:
    dims = [dimension] if dimension else list(EQUITY_DIMENSIONS)
    return [("group", d, v) for d in dims for v in EQUITY_DIMENSIONS[d]]


def age_band(age: int) -> str:
    # Under 18: youth justice; 18-25: young adults, who fall between youth and adult services
    # (Transition to Adulthood Alliance); wider bands as used in equality monitoring.
    if age < 18:
        return "under 18"
    if age <= 25:
        return "18-25"
    if age <= 39:
        return "26-39"
    if age <= 59:
        return "40-59"
    return "60+"


def ethnic_group(text: str | None) -> str:
    first = (text or "").strip().lower().split(" ")[0].strip(",;/")
    aliases = {"asian": "asian", "black": "black", "mixed": "mixed", "white": "white", "other": "other",
               "arab": "other"}
    return aliases.get(first, "not recorded or not mapped")


def groups_of(age: int, sex: str, ethnicity: str | None) -> list[Group]:
    return [("group", "sex", sex if sex in SEXES else "unknown"), ("group", "age_band", age_band(age)),
            ("group", "ethnicity", ethnic_group(ethnicity))]


@dataclass
class Decided:
    routes: dict[str, list[RouteDecision]] = field(default_factory=lambda: defaultdict(list))
    needs: dict[str, list[NeedDecision]] = field(default_factory=lambda: defaultdict(list))
    referrals: dict[str, list[Referral]] = field(default_factory=lambda: defaultdict(list))


def _chunks(ids: list[str], n: int = 500) -> Iterable[list[str]]:
    for i in range(0, len(ids), n):
        yield ids[i:i + n]


def decisions(session: Session, screen_ids: list[str], domains: set[str] | None) -> Decided:
    """Route and need decisions in force, and referrals, of the given screens (need domains: all if None)."""
    out = Decided()
    routes: dict[tuple[str, str], RouteDecision] = {}
    needs: dict[tuple[str, str], NeedDecision] = {}
    for chunk in _chunks(screen_ids):
        for r in session.scalars(select(RouteDecision).where(RouteDecision.screen_id.in_(chunk)).order_by(RouteDecision.id)):
            routes[(r.screen_id, r.route)] = r
        for n in session.scalars(select(NeedDecision).where(NeedDecision.screen_id.in_(chunk)).order_by(NeedDecision.id)):
            if domains is None or n.domain in domains:
                needs[(n.screen_id, n.domain)] = n
        for ref in session.scalars(select(Referral).where(Referral.screen_id.in_(chunk)).order_by(Referral.id)):
            out.referrals[ref.screen_id].append(ref)
    for (sid, _), r in routes.items():
        out.routes[sid].append(r)
    for (sid, _), n in needs.items():
        out.needs[sid].append(n)
    return out


def decision_measures(needs: list[NeedDecision]) -> list[str]:
    out = []
    for n in needs:
        out.append("need_decisions")
        if n.need != n.proposed:
            out.append("overrides")
    return out


def screen_measures(routes: list[RouteDecision], needs: list[NeedDecision], referrals: list[Referral]) -> list[str]:
    """The outcome measures one screen adds to its cell (repeated once per route, decision or referral)."""
    out: list[str] = []
    for r in routes:
        accepted = r.decision == Decision.accept
        if r.proposed:
            out.append("routes_proposed")
            if accepted:
                out.append("routes_accepted")
        elif accepted:
            out.append("routes_added")
    for n in needs:
        out.append(f"decided:{n.domain}")
        if n.need:
            out.append(f"confirmed:{n.domain}")
        if n.need != n.proposed:
            out.append(f"override:{n.domain}")
    out += decision_measures(needs)
    for ref in referrals:
        out.append("referrals")
        if ref.status in ATTENDED:
            out.append("referrals_attended")
        if ref.status == ReferralStatus.engaged:
            out.append("referrals_engaged")
    return out
