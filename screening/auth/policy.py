"""The access policy: the one place that says which role may do what.

Every route declares the permission it needs with `Authorize(...)`; record-level rules (a nurse sees
only the screens of her own custody suites) live in `may_access_screen`. The access-matrix test walks
every route in the OpenAPI schema against this table, so a new route without a rule fails.
"""

from __future__ import annotations

from enum import StrEnum

from screening.auth.models import Role


class Permission(StrEnum):
    instruments_read = "instruments:read"
    screens_read = "screens:read"
    screens_write = "screens:write"
    users_manage = "users:manage"
    models_read = "models:read"
    insights_read = "insights:read"


POLICY: dict[Permission, frozenset[Role]] = {
    # Instrument definitions hold no personal data; every signed-in role may read them.
    Permission.instruments_read: frozenset(Role),
    Permission.screens_read: frozenset({Role.nurse}),
    Permission.screens_write: frozenset({Role.nurse}),
    Permission.users_manage: frozenset({Role.admin}),
    # Model versions and their held-out figures hold no personal data; the people who train, promote
    # and commission the model, and nurses who see its version on every assessment, may read them.
    Permission.models_read: frozenset(Role),
    # Aggregate, suppressed figures for commissioning. Admins run the system, not the service, so they
    # are not given them by default; a site that wants otherwise adds the role here.
    Permission.insights_read: frozenset({Role.commissioner}),
}


def allowed(role: str, permission: Permission) -> bool:
    return role in POLICY[permission]


def may_access_screen(role: str, user_suites: list[str], screen_suite: str) -> bool:
    """Record-level rule: nurses work only on screens of their own custody suites."""
    if role == Role.nurse:
        return screen_suite in user_suites
    return False
