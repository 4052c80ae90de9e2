from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse

from screening.audit import service as audit
from screening.audit.service import Actor
from screening.auth import throttle
from screening.auth.dependencies import CurrentUser, client_ip
from screening.auth.schemas import Token, UserRead
from screening.auth.security import issue_token
from screening.auth.service import authenticate, known_user_id
from screening.dependencies import SessionDep, SettingsDep
from screening.errors import problem_response

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


_ANONYMOUS = "anonymous"


@router.post(
    "/token",
    response_model=Token,
    responses={401: {"description": "Wrong credentials"}, 429: {"description": "Too many failed attempts"}},
)
def token(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
) -> Token | JSONResponse:
    """Exchange a username and password for a short-lived bearer token.

    Repeated failures for one username, or from one address, answer 429 with Retry-After.
    """
    ip = client_ip(request)
    anonymous = Actor(None, _ANONYMOUS, _ANONYMOUS, ip)
    # The failure answers are returned, not raised, so that the attempt and its audit entry commit.
    wait = throttle.retry_after(session, settings, username, ip)
    if wait is not None:
        audit.record(session, anonymous, "auth.login.throttled", "user", known_user_id(session, username))
        return problem_response(429, "Too many requests", "Too many failed sign-ins; try again later.",
                                instance=request.url.path, headers={"Retry-After": str(wait)})
    user = authenticate(session, username, password)
    if user is None:
        throttle.record_failure(session, settings, username, ip)
        audit.record(session, anonymous, "auth.login.failed", "user", known_user_id(session, username))
        # One message whatever was wrong: no hint whether the username exists or is disabled.
        return problem_response(401, "Not authenticated", "Incorrect username or password.",
                                instance=request.url.path, headers={"WWW-Authenticate": "Bearer"})
    throttle.clear_failures(session, settings, username)
    audit.record(session, Actor(user.id, user.username, user.role, ip), "auth.login", "user", str(user.id))
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
