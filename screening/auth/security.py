"""Password hashing (Argon2id) and short-lived signed bearer tokens."""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from screening.db import utcnow

_hasher = PasswordHasher()  # argon2-cffi defaults follow RFC 9106's second recommended option


# Verified against when a username is unknown, so that a miss costs the same as a wrong password
# and timing does not reveal which usernames exist.
# Made on first use rather than at import: an Argon2 hash costs tenths of a second of every
# worker's start-up otherwise.
@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


ALGORITHM = "HS256"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


PASSWORD_MIN_LENGTH = 12


def password_problems(password: str, username: str) -> list[str]:
    """Policy after NCSC password guidance: length over complexity, no reuse of the username."""
    problems = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"must be at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > 256:
        problems.append("must be at most 256 characters")
    if username and username.lower() in password.lower():
        problems.append("must not contain the username")
    if len(set(password)) < 5:
        problems.append("must not be mostly one repeated character")
    return problems


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    role: str
    version: int
    expires_at: float  # seconds since the epoch


def issue_token(secret: str, user_id: int, role: str, version: int, ttl_seconds: int) -> str:
    now = utcnow()
    claims = {
        "sub": str(user_id),
        "role": role,
        "ver": version,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_seconds),
        "jti": secrets.token_urlsafe(12),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(secret: str, token: str) -> TokenClaims | None:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp", "ver"]})
        return TokenClaims(user_id=int(claims["sub"]), role=str(claims["role"]), version=int(claims["ver"]),
                           expires_at=float(claims["exp"]))
    except (jwt.PyJWTError, KeyError, ValueError):
        return None
