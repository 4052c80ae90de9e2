"""Login throttling: failed sign-ins counted per username and per source address, in the database.

Counting in the database (not in process memory) means several workers, and a restart, see the same
count. Throttling is decided before the password is checked, and keyed on the username as typed, so
a locked-out answer says nothing about whether the account exists.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from screening.auth.models import LoginAttempt
from screening.config import Settings
from screening.db import utcnow


def username_key(settings: Settings, username: str) -> str:
    secret = settings.secret_key.get_secret_value().encode()
    return hmac.new(secret, b"login:" + username.strip().lower().encode(), hashlib.sha256).hexdigest()


def _retry_after(oldest: datetime | None, now: datetime, window: int) -> int:
    if oldest is None:
        return window
    return max(1, math.ceil((oldest + timedelta(seconds=window) - now).total_seconds()))


def retry_after(session: Session, settings: Settings, username: str, source_ip: str | None) -> int | None:
    """Seconds to wait if this username or address has failed too often in the window; None if not throttled."""
    now = utcnow()
    since = now - timedelta(seconds=settings.login_window_seconds)
    waits = []
    checks = [(LoginAttempt.username_key == username_key(settings, username), settings.login_max_failures)]
    if source_ip:
        checks.append((LoginAttempt.source_ip == source_ip, settings.login_ip_max_failures))
    for where, limit in checks:
        count, oldest = session.execute(
            select(func.count(), func.min(LoginAttempt.at)).where(where, LoginAttempt.at >= since)
        ).one()
        if count >= limit:
            # The window slides: once the oldest counted failure ages out, one more try is allowed.
            waits.append(_retry_after(oldest, now, settings.login_window_seconds))
    return max(waits) if waits else None


def record_failure(session: Session, settings: Settings, username: str, source_ip: str | None) -> None:
    session.add(LoginAttempt(at=utcnow(), username_key=username_key(settings, username), source_ip=source_ip))
    session.flush()


def clear_failures(session: Session, settings: Settings, username: str) -> None:
    """A successful sign-in forgives the username's earlier failures (not the address's)."""
    session.execute(delete(LoginAttempt).where(LoginAttempt.username_key == username_key(settings, username)))


def purge_old(session: Session, settings: Settings) -> int:
    """Failures older than the window count for nothing; the retention purge removes them."""
    since = utcnow() - timedelta(seconds=settings.login_window_seconds)
    result = session.execute(delete(LoginAttempt).where(LoginAttempt.at < since))
    return int(getattr(result, "rowcount", 0) or 0)
