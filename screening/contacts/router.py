from __future__ import annotations

from fastapi import APIRouter

from screening.audit import service as audit
from screening.contacts import service
from screening.contacts.schemas import ContactContext
from screening.dependencies import RegistryDep, SessionDep, SettingsDep
from screening.screens.dependencies import ReadableScreen, ScreenReader

router = APIRouter(prefix="/api/v1/screens", tags=["contacts"])


@router.get("/{screen_id}/contacts", response_model=ContactContext)
def get_contacts(
    screen: ReadableScreen, session: SessionDep, registry: RegistryDep, settings: SettingsDep, user: ScreenReader
) -> ContactContext:
    """Earlier linked contacts in the last 12 months, their need domains, and the multiple-needs flag."""
    context = service.contact_context(session, registry, settings, user, screen)
    audit.record(session, user.actor, "screen.contacts.read", "screen", screen.id,
                 {"earlier": context.previous_contacts, "mcn": context.multiple_complex_needs.flagged})
    return context
