"""Every route in the OpenAPI schema, called by every kind of user and without a token, against the
written access matrix (access_matrix.yaml). A route missing from the matrix fails the test."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from screening.app import create_app
from screening.auth.models import Role
from screening.config import Settings
from tests.factories import PASSWORD, create_screen, give_consent, headers_for, make_user, screen_body

MATRIX_FILE = Path(__file__).with_name("access_matrix.yaml")
SUBJECTS = ("nurse", "nurse_other_suite", "court", "data_scientist", "admin", "commissioner")
SUITE = "Leeds Central"
_n = itertools.count(1)

# Values for path parameters; "{screen_id}" and "{user_id}" are filled from real records below.
PATH_VALUES: dict[str, str] = {"instrument_id": "phq9", "route": "housing_support", "domain": "mental_health",
                               "referral_id": "1"}

# Request bodies that get an allowed caller past validation (keyword arguments for client.request).
# A 422 also proves the caller got past the access check, which is all this test is about; the
# happy paths are tested per domain.
BODIES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "POST /api/v1/auth/token": lambda ctx: {"data": {"username": ctx["nurse_username"], "password": PASSWORD}},
    "POST /api/v1/instruments/{instrument_id}/score": lambda ctx: {
        "json": {"answers": {f"phq9_{i}": 0 for i in range(1, 10)}}},
    "POST /api/v1/screens": lambda ctx: {"json": screen_body(custody_suite=SUITE)},
    "PATCH /api/v1/screens/{screen_id}/answers": lambda ctx: {"json": {"answers": {"phq9_1": 1}}},
    "PUT /api/v1/screens/{screen_id}/consent": lambda ctx: {"json": {
        "screening": True, "share_with_health": True, "share_with_court": False, "capacity": "has_capacity"}},
    "POST /api/v1/users": lambda ctx: {"json": {"username": f"made{next(_n)}", "password": "another long passphrase",
                                                "role": "court"}},
    # Deliberately too short: a valid one would revoke the caller's token half-way through the walk.
    "POST /api/v1/users/me/password": lambda ctx: {"json": {"password": "short"}},
    "PUT /api/v1/users/{user_id}/password": lambda ctx: {"json": {"password": "short"}},
    "POST /api/v1/screens/{screen_id}/recommendations/{route}/decision": lambda ctx: {"json": {"decision": "accept"}},
    "PUT /api/v1/screens/{screen_id}/needs/{domain}": lambda ctx: {"json": {"need": False}},
    "PATCH /api/v1/screens/{screen_id}/referrals/{referral_id}": lambda ctx: {"json": {"status": "attended"}},
}
# State-changing routes walked last, so that earlier calls still find a draft screen.
LAST = ("POST /api/v1/screens/{screen_id}/finalise",)


def load_matrix() -> dict[str, list[str]]:
    data = yaml.safe_load(MATRIX_FILE.read_text())
    for key, subjects in data.items():
        assert isinstance(subjects, list), f"{MATRIX_FILE.name}: {key!r} must map to a list of subjects"
        unknown = set(subjects) - {*SUBJECTS, "public"}
        assert not unknown, f"{MATRIX_FILE.name}: {key!r} names unknown subjects {sorted(unknown)}; use {SUBJECTS}"
    return data


def schema_routes(app_settings: Settings | None = None) -> list[str]:
    app = create_app(app_settings or Settings(environment="test"))
    return [f"{method.upper()} {path}" for path, ops in app.openapi()["paths"].items() for method in ops]


def test_matrix_lists_every_route_and_nothing_else() -> None:
    matrix = load_matrix()
    routes = schema_routes()
    missing = [r for r in routes if r not in matrix]
    stale = [r for r in matrix if r not in routes]
    assert not missing, (
        f"Routes with no entry in {MATRIX_FILE}: {missing}. Add a line `METHOD /path: [subjects...]` for each, "
        f"listing who may call it (subjects: public, {', '.join(SUBJECTS)}); see the comment at the top of the file."
    )
    assert not stale, f"{MATRIX_FILE} lists routes the API no longer has: {stale}. Remove or rename them."


def _fill(route: str, ctx: dict[str, Any]) -> str:
    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in ctx:
            return str(ctx[name])
        if name in PATH_VALUES:
            return PATH_VALUES[name]
        raise AssertionError(
            f"{route}: no test value for path parameter {{{name}}}; add one to PATH_VALUES in {__file__}")

    return re.sub(r"\{(\w+)\}", value, route.split(" ", 1)[1])


def _call(client: TestClient, route: str, ctx: dict[str, Any], headers: dict[str, str] | None) -> int:
    method = route.split(" ", 1)[0]
    kwargs = BODIES[route](ctx) if route in BODIES else {}
    return client.request(method, _fill(route, ctx), headers=headers, **kwargs).status_code


def test_every_route_answers_every_role_as_the_matrix_says(client: TestClient, session: Session) -> None:
    matrix = load_matrix()
    users = {
        "nurse": make_user(session, Role.nurse, [SUITE]),
        "nurse_other_suite": make_user(session, Role.nurse, ["Bradford"]),
        "court": make_user(session, Role.court),
        "data_scientist": make_user(session, Role.data_scientist),
        "admin": make_user(session, Role.admin),
        "commissioner": make_user(session, Role.commissioner),
    }
    headers = {name: headers_for(client, u) for name, u in users.items()}
    screen = create_screen(client, headers["nurse"], custody_suite=SUITE)
    give_consent(client, headers["nurse"], screen["id"])
    target = make_user(session, Role.court)
    ctx = {"screen_id": screen["id"], "user_id": target.id, "nurse_username": users["nurse"].username}

    routes = [r for r in schema_routes(client.app.state.settings) if r in matrix]  # type: ignore[attr-defined]
    routes.sort(key=lambda r: r in LAST)
    wrong: list[str] = []
    for route in routes:
        allowed = matrix[route]
        public = "public" in allowed
        status = _call(client, route, ctx, None)
        if (public and status in (401, 403)) or (not public and status != 401) or status >= 500:
            wrong.append(f"{route} without a token: {status}, expected {'not 401/403' if public else 401}")
        # Refused subjects first, so that an allowed call changing state cannot mask a refusal.
        for subject in sorted(SUBJECTS, key=lambda s: public or s in allowed):
            ok = public or subject in allowed
            status = _call(client, route, ctx, headers[subject])
            if status >= 500 or (ok and status in (401, 403)) or (not ok and status != 403):
                wrong.append(f"{route} as {subject}: {status}, expected {'access (not 401/403)' if ok else 403}")
    assert not wrong, "Access differs from tests/security/access_matrix.yaml:\n" + "\n".join(wrong)


class TestNobodyEditsAFinalScreen:
    def test_answers_consent_and_finalise_are_refused_once_final(self, client: TestClient, session: Session) -> None:
        h = headers_for(client, make_user(session))
        s = create_screen(client, h)
        give_consent(client, h, s["id"])
        assert client.post(f"/api/v1/screens/{s['id']}/finalise", headers=h).status_code == 200
        r = client.patch(f"/api/v1/screens/{s['id']}/answers", json={"answers": {"phq9_1": 1}}, headers=h)
        assert r.status_code == 409
        body = {"screening": False, "share_with_health": False, "share_with_court": False, "capacity": "has_capacity"}
        assert client.put(f"/api/v1/screens/{s['id']}/consent", json=body, headers=h).status_code == 409
        assert client.post(f"/api/v1/screens/{s['id']}/finalise", headers=h).status_code == 409
        assert client.get(f"/api/v1/screens/{s['id']}", headers=h).json()["answers"] == {}


@pytest.mark.parametrize(
    ("role", "suites", "share", "expected"),
    [("court", [], True, True), ("court", [], False, False), ("nurse", [SUITE], False, True),
     ("nurse", ["Bradford"], True, False), ("admin", [], True, False), ("data_scientist", [], True, False)],
)
def test_court_report_rule_follows_consent(role: str, suites: list[str], share: bool, expected: bool) -> None:
    from screening.auth.policy import may_read_court_report

    assert may_read_court_report(role, suites, SUITE, share) is expected
