"""Person linkage without identity spread: only a keyed hash of a person reference is kept."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from screening.screens.models import Screen

# Revolving Doors Agency (2013) asks for repeat contact over the last year.
REPEAT_WINDOW = timedelta(days=365)


def normalise_ref(ref: str) -> str:
    """The same reference however it is typed: no spaces, hyphens or slashes; upper case."""
    return re.sub(r"[\s\-/]", "", ref).upper()


def person_hash(key: str, ref: str) -> str:
    return hmac.new(key.encode(), normalise_ref(ref).encode(), hashlib.sha256).hexdigest()


def previous_contacts(session: Session, screen: Screen) -> int:
    """Earlier screens of the same person in the 12 months before this one, in any suite."""
    if not screen.person_hash:
        return 0
    since: datetime = screen.created_at - REPEAT_WINDOW
    return session.scalar(
        select(func.count()).select_from(Screen).where(
            Screen.person_hash == screen.person_hash,
            Screen.id != screen.id,
            Screen.created_at < screen.created_at,
            Screen.created_at >= since,
        )
    ) or 0
