"""Person linkage without identity spread: only a keyed hash of a person reference is kept.

Key rotation: `settings.person_key` hashes every new reference; `settings.person_key_previous` holds
the keys used before. When a reference is presented again, earlier screens hashed under an old key
are found by hashing the reference under each old key, and re-keyed to the current key in the same
unit of work. Rows of people never seen again keep their old hash (nothing links to them without
the reference), so an old key can be dropped once the repeat-contact window (12 months) has passed
since the rotation: by then every row it could still link is outside the window anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from screening.screens.models import Screen

# Revolving Doors Agency (2013) asks for repeat contact over the last year.
REPEAT_WINDOW = timedelta(days=365)


class ScreenLike(Protocol):
    """What the linkage statements read of a screen: the ORM's `Screen` or the hot routes' `ScreenRow`."""

    @property
    def id(self) -> str: ...
    @property
    def person_hash(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...


def normalise_ref(ref: str) -> str:
    """The same reference however it is typed: no spaces, hyphens or slashes; upper case."""
    return re.sub(r"[\s\-/]", "", ref).upper()


def person_hash(key: str, ref: str) -> str:
    return hmac.new(key.encode(), normalise_ref(ref).encode(), hashlib.sha256).hexdigest()


def link_person(session: Session, key: str, previous_keys: Sequence[str], ref: str) -> tuple[str, int]:
    """The current-key hash of `ref`, and how many earlier screens were re-keyed from a previous key.

    Called before the new screen is added, so the new screen and every earlier one of the same
    person carry the same hash when the unit of work commits.
    """
    current = person_hash(key, ref)
    old = [h for h in (person_hash(k, ref) for k in previous_keys if k and k != key) if h != current]
    if not old:
        return current, 0
    result = session.execute(
        update(Screen).where(Screen.person_hash.in_(old)).values(person_hash=current).execution_options(
            synchronize_session="fetch"
        )
    )
    return current, int(getattr(result, "rowcount", 0) or 0)


_screens = cast(Table, Screen.__table__)
# Earlier screens of the same person in the 12 months before this one (parameters: `earlier_params`). Built
# once, with bound parameters, on the table's columns, so the ORM and the hot routes' driver run the same
# statements: they run on every read of a linked screen, and building them cost as much as running them.
EARLIER_LINKED = (
    _screens.c.person_hash == bindparam("person_hash"),
    _screens.c.id != bindparam("screen_id"),
    _screens.c.created_at < bindparam("created_at", type_=_screens.c.created_at.type),
    _screens.c.created_at >= bindparam("since", type_=_screens.c.created_at.type),
)
PREVIOUS_CONTACTS = select(func.count()).select_from(_screens).where(*EARLIER_LINKED)


def earlier_params(screen: Screen | ScreenLike) -> dict[str, Any]:
    since: datetime = screen.created_at - REPEAT_WINDOW
    return {"person_hash": screen.person_hash, "screen_id": screen.id, "created_at": screen.created_at, "since": since}


def previous_contacts(session: Session, screen: Screen) -> int:
    """Earlier screens of the same person in the 12 months before this one, in any suite."""
    if not screen.person_hash:
        return 0
    return session.scalar(PREVIOUS_CONTACTS, earlier_params(screen)) or 0
