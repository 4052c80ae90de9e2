"""The access policy: the one place that says which role may do what.

Every route declares the permission it needs with `Authorize(...)`; record-level rules live in the
`may_*` functions below (a nurse sees only the screens of her own custody suites; a court user sees
only court reports that the person's consent allows). The access-matrix test
(`tests/security/access_matrix.yaml`) walks every route in the OpenAPI schema against this table, so a
new route without a rule fails.
"""

from __future__ import annotations

from enum import StrEnum

from screening.auth.models import Role
from screening.screens.models import ScreenStatus


class Permission(StrEnum):
    instruments_read = "instruments:read"
    screens_read = "screens:read"
    screens_write = "screens:write"
    users_manage = "users:manage"
    routes_read = "routes:read"
    routes_decide = "routes:decide"
    referrals_write = "referrals:write"
    # A record's audit history names who touched it: accountability is the admin's job.
    audit_read = "audit:read"
    # Pseudonymised rows only: no custody record, name, date of birth or free text.
    exports_read = "exports:read"
    models_manage = "models:manage"
    rules_manage = "rules:manage"
    retention_manage = "retention:manage"
    # Court information reports: the record-level rule `may_read_court_report` adds the consent check.
    court_report_read = "court_report:read"
    models_read = "models:read"
    court_reports_list = "court_reports:list"
    insights_read = "insights:read"


POLICY: dict[Permission, frozenset[Role]] = {
    # Instrument definitions hold no personal data; every signed-in role may read them.
    Permission.instruments_read: frozenset(Role),
    # Identifiable screens and answers: the nurses of the screen's suite, nobody else (not even admin:
    # administering the service does not need clinical detail).
    Permission.screens_read: frozenset({Role.nurse}),
    Permission.screens_write: frozenset({Role.nurse}),
    Permission.users_manage: frozenset({Role.admin}),
    # Routes, needs and referrals are clinical decisions: the nurse's alone (issue 4).
    Permission.routes_read: frozenset({Role.nurse}),
    Permission.routes_decide: frozenset({Role.nurse}),
    Permission.referrals_write: frozenset({Role.nurse}),
    Permission.audit_read: frozenset({Role.admin}),
    Permission.exports_read: frozenset({Role.data_scientist}),
    Permission.models_manage: frozenset({Role.admin}),
    Permission.rules_manage: frozenset({Role.admin}),
    Permission.retention_manage: frozenset({Role.admin}),
    # The court reads only the report, and only when consent allows (checked per record).
    Permission.court_report_read: frozenset({Role.nurse, Role.court}),
    # Model versions and their held-out figures hold no personal data; the people who train, promote
    # and commission the model, and nurses who see its version on every assessment, may read them.
    Permission.models_read: frozenset(Role),
    # The court sees which reports were shared with it, never the screens themselves.
    Permission.court_reports_list: frozenset({Role.court}),
    # Aggregate, suppressed figures for commissioning. Admins run the system, not the service, so they
    # are not given them by default; a site that wants otherwise adds the role here.
    Permission.insights_read: frozenset({Role.commissioner}),
}


def allowed(role: str, permission: Permission) -> bool:
    return role in POLICY[permission]


def may_access_screen(role: str, user_suites: list[str], screen_suite: str) -> bool:
    """Record-level rule: nurses work only on screens of their own custody suites; no other role sees screens."""
    if role == Role.nurse:
        return screen_suite in user_suites
    return False


def may_edit_screen(status: str) -> bool:
    """Nobody edits a final screen: it is the record a court report and a referral rest on."""
    return status != ScreenStatus.final


def may_read_court_report(
    role: str, user_suites: list[str], screen_suite: str, share_with_court: bool = True
) -> bool:
    """Record-level rule for the court report.

    A court user (courts serve many suites, so not tied to one) reads a report only if the person's
    latest consent allows sharing with police, CPS and the court (NHS England L&D; MDU guidance); a
    caller that checks consent separately may leave `share_with_court` at its default. A nurse of the
    screen's suite may read it regardless, to check what would be shared.
    """
    if role == Role.court:
        return share_with_court
    return may_access_screen(role, user_suites, screen_suite)
