from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from screening.audit import service as audit
from screening.auth import service as accounts
from screening.auth.dependencies import Authorize, CurrentUser
from screening.auth.models import User
from screening.auth.policy import Permission
from screening.auth.schemas import Principal, UserRead
from screening.dependencies import SessionDep
from screening.users import service
from screening.users.schemas import PasswordChange, UserCreate

router = APIRouter(prefix="/api/v1/users", tags=["users"])
Admin = Annotated[Principal, Depends(Authorize(Permission.users_manage))]


@router.get("", response_model=list[UserRead])
def list_users(session: SessionDep, admin: Admin) -> list[UserRead]:
    """Every account, by username."""
    users = service.list_users(session)
    # Staff accounts are personal data too: reading the list is on the record.
    audit.record(session, admin.actor, "user.list", "user", None, {"count": len(users)})
    return users


@router.post("", response_model=UserRead, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, session: SessionDep, admin: Admin) -> UserRead:
    """Create an account; the password must meet the policy."""
    return service.create(session, admin.actor, body)


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT)
def change_own_password(body: PasswordChange, session: SessionDep, me: CurrentUser) -> None:
    """Change your own password; every token issued before, including this one, stops working."""
    user = session.get(User, me.id)
    assert user is not None  # get_principal has just loaded it
    service.change_password(session, me.actor, user, body.password)


@router.post("/{user_id}/disable", response_model=UserRead)
def disable_user(user_id: int, session: SessionDep, admin: Admin) -> UserRead:
    """Disable an account: sign-in is refused and every token it holds stops working at once."""
    user = service.get_user(session, user_id)
    accounts.set_active(session, user, False, admin.actor)
    return service.to_read(user)


@router.post("/{user_id}/enable", response_model=UserRead)
def enable_user(user_id: int, session: SessionDep, admin: Admin) -> UserRead:
    """Re-enable a disabled account (old tokens stay revoked)."""
    user = service.get_user(session, user_id)
    accounts.set_active(session, user, True, admin.actor)
    return service.to_read(user)


@router.put("/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT)
def reset_password(user_id: int, body: PasswordChange, session: SessionDep, admin: Admin) -> None:
    """Set a user's password (e.g. after a reset request); their tokens stop working."""
    service.change_password(session, admin.actor, service.get_user(session, user_id), body.password)
