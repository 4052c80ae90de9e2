"""Who is asking, and the request's unit of work.

Three ways for a route to get the signed-in user:

* `Authorize(permission)` (and `CurrentUser`): a dependency that loads the user in the request's
  session (`SessionDep`); the route is a plain `def`, run in the thread pool.
* `Transact(permission)`: for the tablet's routes that use the ORM (open a screen, consent, finalise,
  recommendations, needs, decisions and referrals). The route is `async def` and hands one function
  to the returned `Work`, which runs the whole unit of work - user check, permission, the route's own
  reads and writes, the audit entry and the commit - in a single thread-pool call. FastAPI sends each
  sync dependency and the sync route to the thread pool separately; those hops cost more than the work.
* `HotTransact(permission)`: for the three commonest taps (read a screen, patch its answers, read its
  assessment), which work at driver level (`screening.driver`). The returned `Hot` checks the token's
  user from the row the route's first statement loads together with the screen.

All check the same things in the same order, against the database on every request: a disabled user,
a bumped token version or a changed role ends the token at once, on every worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from screening.auth.models import User
from screening.auth.policy import Permission, allowed
from screening.auth.schemas import Principal
from screening.auth.security import TokenClaims, read_token
from screening.db import unit_of_work
from screening.dependencies import SessionDep, SettingsDep
from screening.driver import HotDatabase
from screening.errors import Forbidden, Unauthorized
from screening.instruments.registry import Registry

if TYPE_CHECKING:
    from screening.model.service import ModelBundle
    from screening.routes.rulebook import Rulebook

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
T = TypeVar("T")


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


@lru_cache(maxsize=4096)
def _verified(secret: str, token: str) -> TokenClaims | None:
    # A token's signature and claims never change, so each is verified once per process; its expiry
    # is checked on every use (below). Revocation is not cached: it is read from the database.
    return read_token(secret, token)


def token_claims(secret: str, token: str | None) -> TokenClaims:
    """The claims of a well-signed, unexpired bearer token; 401 otherwise."""
    if not token:
        raise Unauthorized("A bearer token is required.")
    claims = _verified(secret, token)
    if claims is None or claims.expires_at <= time.time():
        raise Unauthorized("The token is invalid or has expired.")
    return claims


_users = User.__table__
# Built once (with a bound parameter): it runs on every request.
_USER = select(_users.c.id, _users.c.username, _users.c.full_name, _users.c.role, _users.c.custody_suites,
               _users.c.active, _users.c.token_version).where(_users.c.id == bindparam("user_id"))


def principal_of(user: Any, claims: TokenClaims, source_ip: str | None) -> Principal:
    """The token's user from their row as it is in the database now; 401 if the token has been revoked."""
    # Disabling a user or bumping token_version ends every token issued before.
    if user is None or not user.active or user.token_version != claims.version or user.role != claims.role:
        raise Unauthorized("The token has been revoked.")
    return Principal(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        custody_suites=tuple(user.custody_suites or ()),
        source_ip=source_ip,
    )


def principal_for(session: Session, claims: TokenClaims, source_ip: str | None) -> Principal:
    """The token's user as they are in the database now; 401 if the token has been revoked."""
    return principal_of(session.execute(_USER, {"user_id": claims.user_id}).first(), claims, source_ip)


def require(principal: Principal, permission: Permission) -> Principal:
    if not allowed(principal.role, permission):
        raise Forbidden(f"The {principal.role} role may not do this.")
    return principal


def get_principal(
    request: Request, session: SessionDep, settings: SettingsDep, token: Annotated[str | None, Depends(oauth2)]
) -> Principal:
    claims = token_claims(settings.secret_key.get_secret_value(), token)
    return principal_for(session, claims, client_ip(request))


CurrentUser = Annotated[Principal, Depends(get_principal)]


class Authorize:
    """Dependency: the signed-in user, if their role holds `permission` under the access policy."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, principal: CurrentUser) -> Principal:  # no I/O: not worth a thread-pool hop
        return require(principal, self.permission)


def authorized(permission: Permission) -> type[Principal]:
    """Typed alias: `user: authorized(Permission.screens_read)` in a route signature."""
    return Annotated[Principal, Depends(Authorize(permission))]  # type: ignore[return-value]


@dataclass(frozen=True)
class Work:
    """A request's unit of work, run in one thread-pool call: `await work(fn)` calls `fn(session, user)`.

    The user is loaded and checked (revocation, then `permission`) in the same transaction as `fn`;
    `fn`'s changes and its audit entries commit together before the route returns, or not at all.
    """

    factory: sessionmaker[Session]
    claims: TokenClaims
    permission: Permission
    source_ip: str | None
    limiter: anyio.CapacityLimiter  # how many units of work may run at once (Settings.db_concurrency)

    async def __call__(self, fn: Callable[[Session, Principal], T]) -> T:
        return await anyio.to_thread.run_sync(self.run, fn, limiter=self.limiter)

    def run(self, fn: Callable[[Session, Principal], T]) -> T:
        with unit_of_work(self.factory) as session:
            user = require(principal_for(session, self.claims, self.source_ip), self.permission)
            return fn(session, user)


class Transact:
    """Dependency: a `Work` for `permission`. Checks the token's signature and expiry (no I/O)."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(
        self, request: Request, settings: SettingsDep, token: Annotated[str | None, Depends(oauth2)]
    ) -> Work:
        claims = token_claims(settings.secret_key.get_secret_value(), token)
        state = request.app.state
        return Work(state.session_factory, claims, self.permission, client_ip(request), state.db_limiter)


@dataclass(frozen=True)
class Hot:
    """A hot route's way to the database at driver level (`screening.driver`), for `permission`.

    The token's signature and expiry are checked before the route runs (no I/O); the user's row is read
    in the route's first statement, with the records it loads, and `principal(row)` checks it: a revoked
    token, a disabled user or a changed role is refused before anything is shown or written. It also
    carries what the hot routes read from the app (the instruments, the served model, the rules), so that the
    route has one dependency, which takes only the request: the shape the hot lane (`screening.fastlane`) serves.
    """

    db: HotDatabase
    claims: TokenClaims
    permission: Permission
    source_ip: str | None
    registry: Registry
    model: ModelBundle | None
    rulebook: Rulebook

    def principal(self, user: Any) -> Principal:
        return require(principal_of(user, self.claims, self.source_ip), self.permission)


# The hot routes take the bearer token in `HotTransact` itself; this puts the same security requirement in
# their OpenAPI entries as `Depends(oauth2)` does for the others.
BEARER: dict[str, Any] = {"security": [{"OAuth2PasswordBearer": []}]}


class HotTransact:
    """Dependency: a `Hot` for `permission` (declare `openapi_extra=BEARER` on the route)."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, request: Request) -> Hot:
        state = request.app.state
        claims = token_claims(state.settings.secret_key.get_secret_value(), await oauth2(request))
        return Hot(state.hot, claims, self.permission, client_ip(request), state.registry,
                   getattr(state, "model", None), state.rulebook)
