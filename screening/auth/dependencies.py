from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from screening.auth.models import User
from screening.auth.policy import Permission, allowed
from screening.auth.schemas import Principal
from screening.auth.security import read_token
from screening.dependencies import SessionDep, SettingsDep
from screening.errors import Forbidden, Unauthorized

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def get_principal(
    request: Request, session: SessionDep, settings: SettingsDep, token: Annotated[str | None, Depends(oauth2)]
) -> Principal:
    if not token:
        raise Unauthorized("A bearer token is required.")
    claims = read_token(settings.secret_key.get_secret_value(), token)
    if claims is None:
        raise Unauthorized("The token is invalid or has expired.")
    user = session.get(User, claims.user_id)
    # Disabling a user or bumping token_version ends every token issued before.
    if user is None or not user.active or user.token_version != claims.version or user.role != claims.role:
        raise Unauthorized("The token has been revoked.")
    principal = Principal(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        custody_suites=tuple(user.custody_suites or ()),
        source_ip=client_ip(request),
    )
    request.state.principal = principal
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]


class Authorize:
    """Dependency: the signed-in user, if their role holds `permission` under the access policy."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, principal: CurrentUser) -> Principal:  # no I/O: not worth a thread-pool hop
        if not allowed(principal.role, self.permission):
            raise Forbidden(f"The {principal.role} role may not do this.")
        return principal


def authorized(permission: Permission) -> type[Principal]:
    """Typed alias: `user: authorized(Permission.screens_read)` in a route signature."""
    return Annotated[Principal, Depends(Authorize(permission))]  # type: ignore[return-value]
