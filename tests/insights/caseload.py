"""A seeded, multi-month synthetic caseload written straight into the tables with chosen dates.

Every screen is described by a `Case`; the tests count the expected figures from these cases with
plain Python, independently of the service's queries.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import combinations

from sqlalchemy.orm import Session

from screening.routes.models import NeedDecision, Referral, RouteDecision
from screening.screens.linkage import person_hash
from screening.screens.models import Answer, Screen
from tests.needs_answers import NEED_ANSWERS, answers_for

SUITES = ("Bradford", "Leeds Central", "Wakefield")
DOMAINS = ("mental_health", "suicide_risk", "substance_misuse", "learning_disability", "physical_health", "housing")
# Cases a month per suite: Leeds is busy, Bradford middling, Wakefield small (so its cells are withheld).
SIZES = {"Leeds Central": (40, 60), "Bradford": (12, 22), "Wakefield": (1, 4)}


DECISION_DOMAINS = ("mental_health", "suicide_risk", "learning_disability", "substance_misuse", "physical_health",
                    "social")
ROUTES = ("community_mental_health", "drug_alcohol_service", "housing_support", "young_adult_service")
REFERRAL_STATUSES = ("made", "attended", "engaged", "declined", "not_known")
SEXES = ("male", "female", "other", "unknown")
ETHNICITIES = (None, "White British", "Black African", "Asian Pakistani", "Mixed", "Other", "prefer not to say")


@dataclass(frozen=True)
class Case:
    id: str
    suite: str
    at: datetime
    status: str
    domains: tuple[str, ...]
    person: str | None
    dob: date = date(1990, 1, 1)
    sex: str = "male"
    ethnicity: str | None = None
    need_decisions: tuple[tuple[str, bool, bool], ...] = ()  # (domain, proposed, need)
    route_decisions: tuple[tuple[str, bool, bool], ...] = ()  # (route, proposed, accepted)
    referrals: tuple[str, ...] = ()  # status of each referral


def month_start(today: date, back: int) -> date:
    y, m = divmod(today.year * 12 + today.month - 1 - back, 12)
    return date(y, m + 1, 1)


def month_of(d: datetime) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def build(seed: int, months_back: int = 5, today: date | None = None, scale: int = 1) -> list[Case]:
    """Cases over the `months_back` completed months before this one (`scale` times the usual numbers)."""
    rnd = random.Random(seed)
    today = today or datetime.now(UTC).date()
    # A pool small enough that some people come back several times, as a revolving-door group does.
    people = [f"PNC/{i:04d}/Q" for i in range(90 * scale)]
    cases = []
    for back in range(months_back, 0, -1):
        start = month_start(today, back)
        for suite in SUITES:
            lo, hi = SIZES[suite]
            for _ in range(rnd.randint(lo * scale, hi * scale)):
                at = datetime(start.year, start.month, rnd.randint(1, 28), rnd.randint(0, 23), rnd.randint(0, 59),
                              tzinfo=UTC)
                status = rnd.choices(["declined", "final", "draft"], weights=[25, 60, 15])[0]
                domains = tuple(d for d in DOMAINS if rnd.random() < 0.35)
                person = rnd.choice(people) if rnd.random() < 0.6 else None
                dob = date(rnd.choice([at.year - 16, at.year - 20, at.year - 24, at.year - 33, at.year - 47,
                                       at.year - 65]), rnd.randint(1, 12), 1)
                needs = tuple((d, proposed, proposed != (rnd.random() < 0.15))
                              for d in DECISION_DOMAINS
                              for proposed in [d in domains or (d == "social" and "housing" in domains)])
                routes = tuple((r, rnd.random() < 0.8, rnd.random() < 0.7) for r in ROUTES if rnd.random() < 0.4)
                referrals = tuple(rnd.choice(REFERRAL_STATUSES) for r in routes if r[2])
                cases.append(Case(str(uuid.UUID(int=rnd.getrandbits(128))), suite, at, status, domains, person, dob,
                                  rnd.choice(SEXES), rnd.choice(ETHNICITIES), needs, routes, referrals))
    return cases


def insert(session: Session, cases: list[Case], user_id: int, person_key: str) -> None:
    for c in cases:
        session.add(Screen(
            id=c.id, custody_record=f"CR/{c.id[:8]}", date_of_birth=c.dob, sex=c.sex, ethnicity=c.ethnicity,
            custody_suite=c.suite, status=c.status, created_by_id=user_id, created_at=c.at, updated_at=c.at,
            person_hash=person_hash(person_key, c.person) if c.person else None,
        ))
    session.flush()
    for c in cases:
        # Declined screens keep answers given before the decline: they must not count as needs.
        for item_id, value in answers_for(*c.domains).items():
            session.add(Answer(screen_id=c.id, item_id=item_id, value=value, updated_by_id=user_id, updated_at=c.at))
        # An earlier, superseded decision first: only the latest per domain or route is in force.
        for domain, proposed, need in c.need_decisions:
            for value in (not need, need):
                session.add(NeedDecision(screen_id=c.id, domain=domain, proposed=proposed, need=value,
                                         decided_by_id=user_id, decided_at=c.at, **PROVENANCE))
        for route, proposed, accepted in c.route_decisions:
            session.add(RouteDecision(screen_id=c.id, route=route, proposed=proposed,
                                      decision="accept" if accepted else "decline", decided_by_id=user_id,
                                      decided_at=c.at, **PROVENANCE))
        for i, status in enumerate(c.referrals):
            session.add(Referral(screen_id=c.id, route=ROUTES[i % len(ROUTES)], urgency="routine", status=status,
                                 made_on=c.at.date(), made_by_id=user_id, updated_by_id=user_id, updated_at=c.at))
    session.commit()


PROVENANCE = {"rules_version": "test", "rules_sha256": "0" * 64, "directory_version": "test",
              "directory_sha256": "0" * 64}


def expected(cases: list[Case]) -> dict[tuple[str, str], dict[str, int]]:
    """Raw counts per (month, suite), and per (month, "All suites"), counted from the cases."""
    out: dict[tuple[str, str], dict[str, int]] = {}

    def add(month: str, suite: str, key: str) -> None:
        for s in (suite, "All suites"):
            cell = out.setdefault((month, s), {})
            cell[key] = cell.get(key, 0) + 1

    for c in cases:
        m = month_of(c.at)
        for s in (c.suite, "All suites"):
            out.setdefault((m, s), {})
        add(m, c.suite, "screens")
        add(m, c.suite, {"declined": "declined", "final": "completed", "draft": "open"}[c.status])
        if c.status == "final":
            for d in c.domains:
                add(m, c.suite, f"need:{d}")
            for a, b in combinations(c.domains, 2):
                add(m, c.suite, f"pair:{a}+{b}")
        if c.status == "final":
            for domain, proposed, need in c.need_decisions:
                add(m, c.suite, "need_decisions")
                add(m, c.suite, f"decided:{domain}")
                if need:
                    add(m, c.suite, f"confirmed:{domain}")
                if need != proposed:
                    add(m, c.suite, "overrides")
                    add(m, c.suite, f"override:{domain}")
            for _, proposed, accepted in c.route_decisions:
                if proposed:
                    add(m, c.suite, "routes_proposed")
                if proposed and accepted:
                    add(m, c.suite, "routes_accepted")
                if accepted and not proposed:
                    add(m, c.suite, "routes_added")
            for status in c.referrals:
                add(m, c.suite, "referrals")
                if status in ("attended", "engaged"):
                    add(m, c.suite, "referrals_attended")
                if status == "engaged":
                    add(m, c.suite, "referrals_engaged")
        if c.person:
            add(m, c.suite, "linked")
            earlier = [e for e in cases if e.person == c.person and c.at - timedelta(days=365) <= e.at < c.at]
            if earlier:
                add(m, c.suite, "repeat")
            domains = {d for e in [c, *earlier] if e.status != "declined" for d in e.domains}
            contacts = len(earlier) + 1
            # The default rule, restated: 3+ contacts and 2+ domains, or a repeat contact with housing and another.
            if (contacts >= 3 and len(domains) >= 2) or (contacts >= 2 and "housing" in domains and len(domains) >= 2):
                add(m, c.suite, "mcn")
    return out


assert set(NEED_ANSWERS) == set(DOMAINS)


def expected_equity(cases: list[Case]) -> dict[tuple[str, str, str], dict[str, int]]:
    """(month, dimension, group) → need decisions and overrides on completed screens, counted from the cases."""
    out: dict[tuple[str, str, str], dict[str, int]] = {}
    for c in cases:
        if c.status != "final":
            continue
        age = c.at.year - c.dob.year - ((c.at.month, c.at.day) < (c.dob.month, c.dob.day))
        band = "under 18" if age < 18 else "18-25" if age <= 25 else "26-39" if age <= 39 else "40-59" if age <= 59 else "60+"
        ethnic = {"White British": "white", "Black African": "black", "Asian Pakistani": "asian", "Mixed": "mixed",
                  "Other": "other"}.get(c.ethnicity or "", "not recorded or not mapped")
        for key in ((month_of(c.at), "sex", c.sex), (month_of(c.at), "age_band", band),
                    (month_of(c.at), "ethnicity", ethnic)):
            cell = out.setdefault(key, {"need_decisions": 0, "overrides": 0})
            cell["need_decisions"] += len(c.need_decisions)
            cell["overrides"] += sum(1 for _, proposed, need in c.need_decisions if need != proposed)
    return out
