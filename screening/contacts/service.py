"""Repeat-contact context for a screen: earlier linked contacts, their needs, and the MCN flag.

Crossing suites: the person hash links contacts in every suite, so a nurse sees that a person was
screened elsewhere, when, and which need domains were met. That is health information shared inside
one L&D service for direct care; what would identify the other episode (its id, suite, custody record)
or expose its detail (answers, scores, free text) stays with the suite that holds it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from screening.auth.policy import may_access_screen
from screening.auth.schemas import Principal
from screening.config import Settings
from screening.contacts import mcn
from screening.contacts.needs import domains, needs_by_screen
from screening.contacts.schemas import ContactContext, EarlierContact, MultipleComplexNeeds
from screening.instruments.registry import Registry
from screening.screens.linkage import REPEAT_WINDOW, earlier_linked
from screening.screens.models import Screen, ScreenStatus


def earlier_screens(session: Session, screen: Screen) -> list[Screen]:
    if not screen.person_hash:
        return []
    return list(session.scalars(
        select(Screen).where(*earlier_linked(screen)).order_by(Screen.created_at.desc(), Screen.id)  # type: ignore[arg-type]
    ))


def contact_context(
    session: Session, registry: Registry, settings: Settings, user: Principal, screen: Screen
) -> ContactContext:
    """Earlier linked contacts in the last 12 months, as much of each as this user may see."""
    earlier = earlier_screens(session, screen)
    needs = needs_by_screen(session, registry, [screen.id, *(s.id for s in earlier)])
    items = []
    for s in earlier:
        visible = may_access_screen(user.role, list(user.custody_suites), s.custody_suite)
        declined = s.status == ScreenStatus.declined
        items.append(EarlierContact(
            date=s.created_at.date(), visible=visible, screen_id=s.id if visible else None,
            custody_suite=s.custody_suite if visible else None, status=ScreenStatus(s.status),
            # Answers kept from before a decline are not shown: the person withdrew from screening.
            need_domains=[] if declined else needs[s.id],
        ))
    recorded = {d for c in items for d in c.need_domains} | set(needs[screen.id])
    recorded_list = [d for d in domains(registry) if d in recorded]
    rule = mcn.McnRule.from_settings(settings)
    contacts = len(earlier) + 1
    result = mcn.assess(rule, contacts, recorded_list)
    return ContactContext(
        screen_id=screen.id, linked=screen.person_hash is not None, window_days=REPEAT_WINDOW.days,
        previous_contacts=len(earlier), contacts_in_window=contacts, need_domains_now=needs[screen.id],
        need_domains_recorded=recorded_list, earlier=items,
        multiple_complex_needs=MultipleComplexNeeds(
            flagged=result.flagged, rule=rule.describe(), reasons=result.reasons, suggested_routes=result.routes
        ),
    )
