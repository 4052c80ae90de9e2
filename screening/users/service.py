"""Account administration for admins: list, create, disable, reset passwords."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from screening.audit.service import Actor
from screening.auth import service as accounts
from screening.auth.models import User
from screening.auth.schemas import UserRead
from screening.errors import Conflict, FieldError, Invalid, NotFound
from screening.users.schemas import UserCreate


def to_read(user: User) -> UserRead:
    return UserRead(id=user.id, username=user.username, full_name=user.full_name, role=user.role,
                    custody_suites=list(user.custody_suites or []), active=user.active)


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}.")
    return user


def list_users(session: Session) -> list[UserRead]:
    return [to_read(u) for u in session.scalars(select(User).order_by(User.username))]


def create(session: Session, actor: Actor, data: UserCreate) -> UserRead:
    if session.scalar(select(User.id).where(User.username == data.username)) is not None:
        raise Conflict(f"User {data.username} already exists.")
    try:
        user = accounts.create_user(session, data.username, data.password, data.role, full_name=data.full_name,
                                    custody_suites=data.custody_suites, actor=actor)
    except accounts.AccountError as exc:
        field = "password" if str(exc).startswith("password") else "custody_suites"
        raise Invalid(str(exc), errors=[FieldError(field=field, message=str(exc))]) from exc
    return to_read(user)


def change_password(session: Session, actor: Actor, user: User, password: str) -> None:
    try:
        accounts.change_password(session, user, password, actor)
    except accounts.AccountError as exc:
        raise Invalid(str(exc), errors=[FieldError(field="password", message=str(exc))]) from exc
