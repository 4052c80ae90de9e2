"""Accounts: creating users and checking credentials."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from screening.audit import service as audit
from screening.audit.service import Actor
from screening.auth.models import Role, User
from screening.auth.security import hash_password, needs_rehash, password_problems, verify_password


class AccountError(ValueError):
    pass


def create_user(
    session: Session,
    username: str,
    password: str,
    role: Role,
    *,
    full_name: str = "",
    custody_suites: list[str] | None = None,
    actor: Actor = audit.SYSTEM,
) -> User:
    problems = password_problems(password, username)
    if problems:
        raise AccountError("password " + "; ".join(problems))
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"user {username} already exists")
    suites = list(custody_suites or [])
    if role is Role.nurse and not suites:
        raise AccountError("a nurse needs at least one custody suite (--suite)")
    user = User(
        username=username,
        full_name=full_name or username,
        password_hash=hash_password(password),
        role=role.value,
        custody_suites=suites,
        active=True,
        token_version=0,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.create", "user", str(user.id), {"role": role.value})
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The user if the credentials are right and the account active; None otherwise (no reason given)."""
    user = session.scalar(select(User).where(User.username == username))
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.active:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user
