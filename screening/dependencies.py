"""Request-scoped dependencies shared by every domain: the unit of work, settings, the registry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from screening.config import Settings
from screening.db import unit_of_work
from screening.instruments.registry import Registry


def get_session(request: Request) -> Iterator[Session]:
    """One unit of work per request: commit on success, roll back on any exception.

    Used with scope="function" so the commit happens before the response is sent: a failed commit
    is answered as an error, never as a success the client would trust.
    """
    with unit_of_work(request.app.state.session_factory) as session:
        yield session


# The two below do no I/O: `async def` keeps FastAPI from sending each to the thread pool, a hop
# that costs more than the lookup itself on every request.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[Registry, Depends(get_registry)]
