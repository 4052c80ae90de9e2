from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Protocol, TypeVar

from fastapi import Depends

from screening.auth.dependencies import Authorize, Hot, HotTransact, Transact, Work
from screening.auth.policy import Permission, may_access_screen
from screening.auth.schemas import Principal
from screening.dependencies import SessionDep
from screening.errors import Forbidden, NotFound
from screening.screens.models import Screen


class _InSuite(Protocol):
    @property
    def custody_suite(self) -> str: ...


S = TypeVar("S", bound=_InSuite)

ScreenReader = Annotated[Principal, Depends(Authorize(Permission.screens_read))]
ScreenWriter = Annotated[Principal, Depends(Authorize(Permission.screens_write))]
# The tablet's hot routes: the whole unit of work in one thread-pool call (see screening.auth.dependencies).
ReadWork = Annotated[Work, Depends(Transact(Permission.screens_read))]
WriteWork = Annotated[Work, Depends(Transact(Permission.screens_write))]
# Reading a screen, patching its answers and its assessment: at driver level (see screening.driver).
HotRead = Annotated[Hot, Depends(HotTransact(Permission.screens_read))]
HotWrite = Annotated[Hot, Depends(HotTransact(Permission.screens_write))]


def check_screen(
    screen: S | None,
    screen_id: str,
    user: Principal,
    rule: Callable[[str, list[str], str], bool] = may_access_screen,
) -> S:
    """The screen (an ORM object or a driver-level row), if it exists and the policy's record-level `rule`
    lets this user at it; 404 or 403 otherwise."""
    if screen is None:
        raise NotFound(f"No screen with id {screen_id}.")
    if not rule(user.role, list(user.custody_suites), screen.custody_suite):
        raise Forbidden("This screen belongs to a custody suite you do not work in.")
    return screen


def load_screen(
    session: SessionDep,
    screen_id: str,
    user: Principal,
    rule: Callable[[str, list[str], str], bool] = may_access_screen,
) -> Screen:
    """The screen, if it exists and the policy's record-level `rule` lets this user at it."""
    return check_screen(session.get(Screen, screen_id), screen_id, user, rule)


def readable_screen(screen_id: str, session: SessionDep, user: ScreenReader) -> Screen:
    """The screen, if it exists and this user may read it."""
    return load_screen(session, screen_id, user)


def writable_screen(screen_id: str, session: SessionDep, user: ScreenWriter) -> Screen:
    """The screen, if it exists and this user may change it."""
    return load_screen(session, screen_id, user)


ReadableScreen = Annotated[Screen, Depends(readable_screen)]
WritableScreen = Annotated[Screen, Depends(writable_screen)]
