"""Repeat-contact context for a screen: earlier linked contacts, their needs, and the MCN flag.

Crossing suites: the person hash links contacts in every suite, so a nurse sees that a person was
screened elsewhere, when, and which need domains were met. That is health information shared inside
one L&D service for direct care; what would identify the other episode (its id, suite, custody record)
or expose its detail (answers, scores, free text) stays with the suite that holds it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from screening.auth.policy import may_access_screen
from screening.auth.schemas import Principal
from screening.config import Settings
from screening.contacts import mcn
from screening.contacts.needs import domains, need_domains, needs_by_screen
from screening.contacts.schemas import ContactContext, EarlierContact, MultipleComplexNeeds, ReferralOutcome
from screening.insights.outcomes import decisions
from screening.instruments.registry import Registry
from screening.routes.models import Decision
from screening.screens.linkage import EARLIER_LINKED, REPEAT_WINDOW, earlier_params
from screening.screens.models import Screen, ScreenStatus

_EARLIER_SCREENS = select(Screen).where(*EARLIER_LINKED).order_by(Screen.created_at.desc(), Screen.id)


def earlier_screens(session: Session, screen: Screen) -> list[Screen]:
    if not screen.person_hash:
        return []
    return list(session.scalars(_EARLIER_SCREENS, earlier_params(screen)))


def counts_needs(status: str) -> bool:
    """Whether a contact's need domains are shown and counted: answers kept from before a decline are not used (the
    person withdrew from screening)."""
    return status != ScreenStatus.declined


def shown_needs(screen: Screen, needs: Mapping[str, list[str]]) -> list[str]:
    return needs.get(screen.id, []) if counts_needs(screen.status) else []


def recorded_domains(registry: Registry, shown: Iterable[list[str]]) -> list[str]:
    """The need domains recorded across contacts (those that `counts_needs`), in `domains()` order."""
    found = {d for needs in shown for d in needs}
    return [d for d in domains(registry) if d in found]


def flag_for(
    registry: Registry, rule: mcn.McnRule, screen: Screen, earlier: Sequence[Screen], needs: Mapping[str, list[str]]
) -> tuple[list[str], mcn.McnAssessment]:
    """Need domains recorded across this contact and the earlier ones in the window, and the MCN rule's verdict.

    Shared with the commissioners' figures so that the flag a nurse sees and the one counted agree.
    """
    recorded = recorded_domains(registry, (shown_needs(s, needs) for s in [screen, *earlier]))
    return recorded, mcn.assess(rule, len(earlier) + 1, recorded)


def repeat_contact_facts(
    session: Session, registry: Registry, screen: Screen, answers: Mapping[str, Any] | None = None
) -> tuple[int, list[str]]:
    """Contacts in the last 12 months (this one included) and the need domains recorded across them.

    What the routes engine's `multiple_complex_needs` condition reads. `answers`, this screen's answers
    if the caller has them, saves reading them again.
    """
    earlier = earlier_screens(session, screen)
    if answers is None:
        needs = needs_by_screen(session, registry, [screen.id, *(s.id for s in earlier)])
    else:
        needs = needs_by_screen(session, registry, [s.id for s in earlier]) if earlier else {}
        needs[screen.id] = need_domains(registry, answers)
    return len(earlier) + 1, recorded_domains(registry, (shown_needs(s, needs) for s in [screen, *earlier]))


def contact_context(
    session: Session, registry: Registry, settings: Settings, user: Principal, screen: Screen
) -> ContactContext:
    """Earlier linked contacts in the last 12 months, as much of each as this user may see."""
    earlier = earlier_screens(session, screen)
    needs = needs_by_screen(session, registry, [screen.id, *(s.id for s in earlier)])
    decided = decisions(session, [s.id for s in earlier], None)
    items = []
    for s in earlier:
        visible = may_access_screen(user.role, list(user.custody_suites), s.custody_suite)
        items.append(EarlierContact(
            date=s.created_at.date(), visible=visible, screen_id=s.id if visible else None,
            custody_suite=s.custody_suite if visible else None, status=ScreenStatus(s.status),
            need_domains=shown_needs(s, needs),
            confirmed_needs=sorted(n.domain for n in decided.needs[s.id] if n.need),
            routes=sorted(r.route for r in decided.routes[s.id] if r.decision == Decision.accept),
            referral_outcomes=[ReferralOutcome(route=r.route, status=r.status, made_on=r.made_on,
                                               outcome_on=r.outcome_on) for r in decided.referrals[s.id]],
        ))
    rule = mcn.McnRule.from_settings(settings)
    recorded, result = flag_for(registry, rule, screen, earlier, needs)
    return ContactContext(
        screen_id=screen.id, linked=screen.person_hash is not None, window_days=REPEAT_WINDOW.days,
        previous_contacts=len(earlier), contacts_in_window=len(earlier) + 1,
        need_domains_now=shown_needs(screen, needs), need_domains_recorded=recorded, earlier=items,
        multiple_complex_needs=MultipleComplexNeeds(
            flagged=result.flagged, rule=rule.describe(), reasons=result.reasons, suggested_routes=result.routes
        ),
    )
