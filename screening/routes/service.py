"""Routes and needs: proposals from the rules, the practitioner's decisions, and referrals.

Services flush, never commit. Decisions are allowed only while the screen is a draft (a final screen is
read-only); referral outcomes are updated after finalisation, because they come in later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from screening.audit import service as audit
from screening.auth.schemas import Principal
from screening.contacts.service import repeat_contact_facts
from screening.db import utcnow
from screening.errors import Conflict, FieldError, Invalid, NotFound
from screening.instruments.registry import Registry
from screening.instruments.service import complete_scores
from screening.memos import kept_with
from screening.routes.dependencies import ModelNeeds
from screening.routes.engine import Evidence, Facts, Proposal, propose_needs, propose_routes, scores_by_id
from screening.routes.models import (
    Decision,
    NeedDecision,
    ReasonCode,
    Referral,
    ReferralStatus,
    RouteDecision,
)
from screening.routes.rulebook import URGENCY_ORDER, RouteKind, Rulebook
from screening.routes.schemas import (
    CatalogueRead,
    DecisionCreate,
    DecisionRead,
    DecisionsRead,
    NeedDefRead,
    NeedPut,
    NeedRead,
    Provenance,
    Reason,
    RecommendationRead,
    ReferralRead,
    ReferralUpdate,
    RouteDefRead,
    ServiceRead,
)
from screening.screens.models import Consent, Screen, ScreenStatus
from screening.screens.schemas import ConsentRead
from screening.screens.service import _usernames, age_on, answer_values, latest_consent, lock
from screening.screens.store import ScreenRow

# Outcomes move forward only; `not_known` can be corrected when news arrives. `engaged` and
# `declined` are final outcomes, so the counts stay honest.
TRANSITIONS: dict[ReferralStatus, frozenset[ReferralStatus]] = {
    ReferralStatus.made: frozenset({ReferralStatus.attended, ReferralStatus.declined, ReferralStatus.not_known}),
    ReferralStatus.attended: frozenset({ReferralStatus.engaged, ReferralStatus.declined, ReferralStatus.not_known}),
    ReferralStatus.not_known: frozenset({ReferralStatus.attended, ReferralStatus.engaged, ReferralStatus.declined}),
    ReferralStatus.engaged: frozenset(),
    ReferralStatus.declined: frozenset(),
}


def facts_for(session: Session, registry: Registry, screen: Screen, model: ModelNeeds) -> Facts:
    answers = answer_values(session, screen.id)
    contacts, recorded = repeat_contact_facts(session, registry, screen, answers)
    return facts_of(registry, screen, answers, latest_consent(session, screen.id), model, contacts, recorded)


def facts_of(registry: Registry, screen: Screen | ScreenRow, answers: Mapping[str, Any],
             consent: Consent | ConsentRead | None, model: ModelNeeds, contacts: int, recorded: Sequence[str]) -> Facts:
    """The facts the rules read, from what was loaded (through the ORM, or at driver level by `routes.hot`)."""
    return Facts(
        answers=answers,
        scores=scores_by_id(complete_scores(registry, answers)),
        # Age on the day of the screen, not today: a report read later must say what was true then.
        age=age_on(screen.date_of_birth, screen.created_at.date()),
        consent={"share_with_health": consent.share_with_health, "share_with_court": consent.share_with_court}
        if consent else {},
        model_needs=dict(model.needs),
        contacts=contacts,
        recorded_domains=tuple(recorded),
    )


class _FactsKey:
    """`Facts` that `facts_for` built, hashable on what the rules read: the answers (with their types: True is not
    1), the age, consent, the model's needs and the repeat-contact facts. The scores are left out of the key
    because `facts_for` derives them from the answers."""

    __slots__ = ("facts", "hash", "key")

    def __init__(self, facts: Facts) -> None:
        self.facts: Facts | None = facts
        self.key = (frozenset((k, v, type(v)) for k, v in facts.answers.items()), facts.age,
                    frozenset(facts.consent.items()), frozenset(facts.model_needs.items()), facts.contacts,
                    facts.recorded_domains)
        self.hash = hash(self.key)

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _FactsKey) and self.key == other.key

    def propose(self, book: Rulebook, registry: Registry) -> tuple[Proposal, ...]:
        """The proposals, on a miss. The memo keeps this key, so it lets go of the facts (scores and all) and
        keeps only its hashable tuple."""
        facts, self.facts = self.facts, None
        assert facts is not None, "a key proposes once"
        return tuple(propose_routes(book, registry, facts))


# Distinct sets of facts whose proposals are remembered per rulebook and process: an entry is the key's tuple
# (~50 answers) and a few routes with their reasons (1-3 KB pickled for the test scenarios): about a MB at most.
PROPOSALS_MEMO_SIZE = 256


def proposed_routes(book: Rulebook, registry: Registry, facts: Facts) -> list[Proposal]:
    """`propose_routes` for facts from `facts_for`, memoised with the rules (a pure function: a tablet asks for the
    same screen's recommendations again and again between answer changes; evaluating the rules cost ~110 us)."""
    memo = kept_with(book.derived, ("proposed_routes", registry),
                     lambda: lru_cache(maxsize=PROPOSALS_MEMO_SIZE)(lambda key: key.propose(book, registry)))
    return list(memo(_FactsKey(facts)))


def _reasons(evidence: tuple[Evidence, ...] | list[Evidence]) -> list[Reason]:
    return [Reason(source=e.source, ref=e.ref, text=e.text) for e in evidence]


# Built once: a statement built per call cost as much again as running it (~40 us here).
_ROUTE_DECISIONS = select(RouteDecision).where(RouteDecision.screen_id == bindparam("screen_id")).order_by(RouteDecision.id)
_NEED_DECISIONS = select(NeedDecision).where(NeedDecision.screen_id == bindparam("screen_id")).order_by(NeedDecision.id)


def route_decisions(session: Session, screen_id: str) -> dict[str, RouteDecision]:
    """The decision in force per route (the latest)."""
    return {r.route: r for r in session.scalars(_ROUTE_DECISIONS, {"screen_id": screen_id})}


def need_decisions(session: Session, screen_id: str) -> dict[str, NeedDecision]:
    return {r.domain: r for r in session.scalars(_NEED_DECISIONS, {"screen_id": screen_id})}


def _service(book: Rulebook, route: str, suite: str) -> ServiceRead | None:
    s = book.service_for(route, suite)
    return ServiceRead(name=s.name, contact=s.contact, hours=s.hours, eligibility=s.eligibility) if s else None


def decision_reads(decisions: Mapping[str, RouteDecision], names: dict[int, str]) -> dict[str, DecisionRead]:
    return {route: DecisionRead(decision=Decision(d.decision), reason_code=d.reason_code, note=d.note,
                                decided_by=names.get(d.decided_by_id, "unknown"), decided_at=d.decided_at)
            for route, d in decisions.items()}


def recommendation_reads(
    book: Rulebook, suite: str, proposals: Sequence[Proposal], decisions: Mapping[str, DecisionRead]
) -> list[RecommendationRead]:
    """The proposals, most urgent first, each with its local service and the decision in force; then the routes
    decided on that the rules do not propose (now)."""
    out = [
        RecommendationRead(route=p.route, title=p.title, urgency=p.urgency, reasons=_reasons(p.reasons),
                           service=_service(book, p.route, suite), decision=decisions.get(p.route),
                           proposed=True, kind=book.rules.routes[p.route].kind)
        for p in proposals
    ]
    proposed = {p.route for p in proposals}
    # Routes the nurse added (or decided on when the rules proposed them earlier), after the proposals.
    order = list(book.rules.routes)
    for route in sorted(set(decisions) - proposed, key=lambda r: order.index(r) if r in order else len(order)):
        definition = book.rules.routes.get(route)
        out.append(RecommendationRead(
            route=route, title=definition.title if definition else route, urgency=None, reasons=[],
            service=_service(book, route, suite), decision=decisions[route], proposed=False,
            kind=definition.kind if definition else RouteKind.service,
        ))
    return out


def recommendations(
    session: Session,
    registry: Registry,
    book: Rulebook,
    user: Principal,
    screen: Screen,
    model: ModelNeeds,
) -> list[RecommendationRead]:
    """Proposed routes, most urgent first, each with its evidence, local service and decision; then additions."""
    proposals = proposed_routes(book, registry, facts_for(session, registry, screen, model))
    decisions = route_decisions(session, screen.id)
    names = _usernames(session, [d.decided_by_id for d in decisions.values()], user)
    audit.record(session, user.actor, "routes.read", "screen", screen.id,
                 {"proposed": len(proposals), "model_version": model.version, **book.provenance()})
    return recommendation_reads(book, screen.custody_suite, proposals, decision_reads(decisions, names))


def _ensure_draft(screen: Screen) -> None:
    if screen.status != ScreenStatus.draft:
        raise Conflict(f"Decisions can only be made while the screen is a draft; this one is {screen.status}.")


def _require_reason(body: DecisionCreate | NeedPut, why: str) -> None:
    errors = []
    if body.reason_code is None:
        errors.append(FieldError(field="reason_code", message=f"required {why}"))
    if body.note is None:
        errors.append(FieldError(field="note", message=f"required {why}"))
    if errors:
        raise Invalid(f"A reason code and a note are required {why}.", errors=errors)


def decide_route(
    session: Session,
    registry: Registry,
    book: Rulebook,
    user: Principal,
    screen: Screen,
    route: str,
    body: DecisionCreate,
    model: ModelNeeds,
) -> RecommendationRead:
    """Accept or decline a route; accepting a route the rules did not propose is an addition."""
    definition = book.rules.routes.get(route)
    if definition is None:
        raise NotFound(f"No route {route}.")
    screen = lock(session, screen)
    _ensure_draft(screen)
    proposals = proposed_routes(book, registry, facts_for(session, registry, screen, model))
    proposal = next((p for p in proposals if p.route == route), None)
    current = route_decisions(session, screen.id).get(route)
    if body.decision is Decision.decline:
        if proposal is None and (current is None or current.decision != Decision.accept):
            raise Conflict(f"{route} was neither proposed nor accepted: there is nothing to decline.")
        _require_reason(body, "to decline a route")
    elif proposal is None:
        _require_reason(body, "to add a route the system did not propose")
    now = utcnow()
    session.add(RouteDecision(
        screen_id=screen.id, route=route, decision=body.decision.value, proposed=proposal is not None,
        proposed_urgency=proposal.urgency.value if proposal else None,
        evidence=[{"source": e.source, "ref": e.ref} for e in proposal.reasons] if proposal else [],
        reason_code=body.reason_code.value if body.reason_code else None, note=body.note,
        decided_by_id=user.id, decided_at=now, model_version=model.version, **book.provenance(),
    ))
    referral = session.scalar(select(Referral).where(Referral.screen_id == screen.id, Referral.route == route))
    if body.decision is Decision.accept and definition.kind is RouteKind.service and referral is None:
        service = book.service_for(route, screen.custody_suite)
        session.add(Referral(
            screen_id=screen.id, route=route, urgency=proposal.urgency.value if proposal else "routine",
            service_name=service.name if service else None, status=ReferralStatus.made.value, made_on=now.date(),
            history=[{"status": ReferralStatus.made.value, "on": now.date().isoformat(), "by": user.username,
                      "at": now.isoformat()}],
            made_by_id=user.id, updated_by_id=user.id, updated_at=now,
        ))
    elif body.decision is Decision.decline and referral is not None:
        # Still a draft: the referral was never sent on, so changing her mind withdraws it.
        session.delete(referral)
    screen.updated_at = now
    audit.record(session, user.actor, "route.decide", "screen", screen.id, {
        "route": route, "decision": body.decision.value, "proposed": proposal is not None,
        "reason_code": body.reason_code.value if body.reason_code else None,
        "rules_version": book.rules_version, "directory_version": book.directory_version,
        "model_version": model.version,
    })
    session.flush()
    decisions = route_decisions(session, screen.id)
    names = _usernames(session, [user.id], user)
    return next(r for r in recommendation_reads(book, screen.custody_suite, proposals, decision_reads(decisions, names))
                if r.route == route)


def _needs(
    book: Rulebook, proposed: Mapping[str, tuple[bool, list[Evidence]]], decided: dict[str, NeedDecision],
    names: dict[int, str],
) -> list[NeedRead]:
    out = []
    for domain, definition in book.rules.needs.items():
        is_proposed, evidence = proposed[domain]
        d = decided.get(domain)
        out.append(NeedRead(
            domain=domain, title=definition.title, proposed=is_proposed, reasons=_reasons(evidence),
            need=d.need if d else None, overridden=d is not None and d.need != is_proposed,
            reason_code=d.reason_code if d else None, note=d.note if d else None,
            decided_by=names.get(d.decided_by_id, "unknown") if d else None, decided_at=d.decided_at if d else None,
        ))
    return out


def decide_need(
    session: Session,
    registry: Registry,
    book: Rulebook,
    user: Principal,
    screen: Screen,
    domain: str,
    body: NeedPut,
    model: ModelNeeds,
) -> NeedRead:
    """Confirm or override the proposed need in one domain; an override needs a reason code and a note."""
    if domain not in book.rules.needs:
        raise NotFound(f"No need domain {domain}.")
    screen = lock(session, screen)
    _ensure_draft(screen)
    proposed = propose_needs(book, registry, facts_for(session, registry, screen, model))
    is_proposed = proposed[domain][0]
    if body.need != is_proposed:
        _require_reason(body, "to override the proposed need")
    now = utcnow()
    session.add(NeedDecision(
        screen_id=screen.id, domain=domain, proposed=is_proposed, need=body.need,
        reason_code=body.reason_code.value if body.reason_code else None, note=body.note,
        decided_by_id=user.id, decided_at=now, model_version=model.version, **book.provenance(),
    ))
    screen.updated_at = now
    audit.record(session, user.actor, "need.decide", "screen", screen.id, {
        "domain": domain, "need": body.need, "proposed": is_proposed,
        "reason_code": body.reason_code.value if body.reason_code else None, "rules_version": book.rules_version,
        "model_version": model.version,
    })
    session.flush()
    needs = _needs(book, proposed, need_decisions(session, screen.id), _usernames(session, [user.id], user))
    return next(n for n in needs if n.domain == domain)


def decisions_view(
    session: Session,
    registry: Registry,
    book: Rulebook,
    user: Principal,
    screen: Screen,
    model: ModelNeeds,
) -> DecisionsRead:
    """Needs and routes, proposed and decided side by side."""
    facts = facts_for(session, registry, screen, model)
    proposals = proposed_routes(book, registry, facts)
    routes = route_decisions(session, screen.id)
    needs = need_decisions(session, screen.id)
    names = _usernames(session, [d.decided_by_id for d in routes.values()] + [d.decided_by_id for d in needs.values()],
                       user)
    audit.record(session, user.actor, "decisions.read", "screen", screen.id, {"model_version": model.version})
    return DecisionsRead(
        screen_id=screen.id, status=screen.status,
        needs=_needs(book, propose_needs(book, registry, facts), needs, names),
        routes=recommendation_reads(book, screen.custody_suite, proposals, decision_reads(routes, names)),
        model_used=model.version is not None, model_version=model.version, provenance=Provenance(**book.provenance()),
    )


def _referral_read(book: Rulebook, r: Referral) -> ReferralRead:
    definition = book.rules.routes.get(r.route)
    return ReferralRead(
        id=r.id, route=r.route, title=definition.title if definition else r.route, urgency=r.urgency,
        service_name=r.service_name, status=ReferralStatus(r.status), made_on=r.made_on, outcome_on=r.outcome_on,
        history=r.history, updated_at=r.updated_at,
    )


def referrals(session: Session, screen_id: str) -> list[Referral]:
    return list(session.scalars(select(Referral).where(Referral.screen_id == screen_id).order_by(Referral.id)))


def list_referrals(session: Session, book: Rulebook, user: Principal, screen: Screen) -> list[ReferralRead]:
    rows = referrals(session, screen.id)
    rows.sort(key=lambda r: URGENCY_ORDER.get(r.urgency, 9))  # type: ignore[call-overload]
    audit.record(session, user.actor, "referral.list", "screen", screen.id, {"count": len(rows)})
    return [_referral_read(book, r) for r in rows]


def update_referral(
    session: Session, book: Rulebook, user: Principal, screen: Screen, referral_id: int, body: ReferralUpdate
) -> ReferralRead:
    """Record a referral's outcome; allowed after the screen is final, because outcomes come in later."""
    referral = session.scalar(
        select(Referral).where(Referral.id == referral_id, Referral.screen_id == screen.id).with_for_update()
    )
    if referral is None:
        raise NotFound(f"No referral {referral_id} on this screen.")
    current = ReferralStatus(referral.status)
    if body.status not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final outcome)"
        raise Conflict(f"A referral cannot go from {current} to {body.status}; allowed: {allowed}.")
    on = body.on or date.today()
    if on < referral.made_on:
        raise Invalid("The outcome date is before the referral was made.",
                      errors=[FieldError(field="on", message="before the referral was made")])
    now = utcnow()
    entry: dict[str, Any] = {"status": body.status.value, "on": on.isoformat(), "by": user.username,
                             "at": now.isoformat()}
    referral.status, referral.outcome_on = body.status.value, on
    referral.history = [*referral.history, entry]
    referral.updated_by_id, referral.updated_at = user.id, now
    audit.record(session, user.actor, "referral.update", "referral", str(referral.id),
                 {"screen_id": screen.id, "route": referral.route, "status": body.status.value})
    session.flush()
    return _referral_read(book, referral)


def catalogue(book: Rulebook) -> CatalogueRead:
    """Routes, need domains and reason codes in force, for the nurse's pick lists."""
    return CatalogueRead(
        routes=[RouteDefRead(route=r, title=d.title, kind=d.kind) for r, d in book.rules.routes.items()],
        needs=[NeedDefRead(domain=n, title=d.title) for n, d in book.rules.needs.items()],
        reason_codes=list(ReasonCode),
        provenance=Provenance(**book.provenance()),
    )
