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


def known_user_id(session: Session, username: str) -> str | None:
    """The id of the account a username names, for the audit trail only (never shown to the caller)."""
    user_id = session.scalar(select(User.id).where(User.username == username))
    return str(user_id) if user_id is not None else None


def change_password(session: Session, user: User, password: str, actor: Actor) -> None:
    """Set a new password under the policy; every token issued before stops working."""
    problems = password_problems(password, user.username)
    if problems:
        raise AccountError("password " + "; ".join(problems))
    user.password_hash = hash_password(password)
    user.token_version += 1
    session.flush()
    audit.record(session, actor, "user.password.change", "user", str(user.id))


def set_active(session: Session, user: User, active: bool, actor: Actor) -> None:
    """Disable (ending every token at once) or re-enable an account."""
    if user.active != active:
        user.active = active
        # A disabled account's tokens must die now, not at expiry: get_principal checks the version.
        user.token_version += 1
        session.flush()
    audit.record(session, actor, "user.disable" if not active else "user.enable", "user", str(user.id))
