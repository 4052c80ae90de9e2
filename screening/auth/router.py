from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request

from screening.audit import service as audit
from screening.audit.service import Actor
from screening.auth.dependencies import CurrentUser, client_ip
from screening.auth.schemas import Token, UserRead
from screening.auth.security import issue_token
from screening.auth.service import authenticate
from screening.dependencies import SessionDep, SettingsDep
from screening.errors import Unauthorized

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/token", response_model=Token)
def token(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
) -> Token:
    """Exchange a username and password for a short-lived bearer token."""
    user = authenticate(session, username, password)
    if user is None:
        # One message whatever was wrong: no hint whether the username exists.
        raise Unauthorized("Incorrect username or password.")
    audit.record(session, Actor(user.id, user.username, user.role, client_ip(request)), "auth.login", "user", str(user.id))
    access = issue_token(
        settings.secret_key.get_secret_value(), user.id, user.role, user.token_version, settings.token_ttl_seconds
    )
    return Token(access_token=access, expires_in=settings.token_ttl_seconds)


@router.get("/me", response_model=UserRead)
def me(principal: CurrentUser) -> UserRead:
    """The signed-in user."""
    return UserRead(
        id=principal.id,
        username=principal.username,
        full_name=principal.full_name,
        role=principal.role,
        custody_suites=list(principal.custody_suites),
        active=True,
    )
