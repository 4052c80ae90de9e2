"""The hot lane (screening.fastlane) answers exactly as FastAPI's own handling of the same routes does.

Every request here is sent twice to the same app, once with the lane first in its routes and once with
the lane taken out, and the two answers must match: status, body and headers (all but the request id).
A wrapper counts what the lane itself served, so a test also shows which path each request took.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Body, Depends, FastAPI, Request, Response
from fastapi.testclient import TestClient
from httpx import Response as HttpResponse
from pydantic import SecretStr
from sqlalchemy.orm import Session

from screening.app import create_app
from screening.auth.roles import Role
from screening.config import Settings
from screening.fastlane import HotLane, install
from screening.screens.dependencies import HotRead
from screening.screens.schemas import AnswersPatch
from tests.factories import create_screen, give_consent, headers_for, make_user

HOT_PATHS = {"/api/v1/screens/{screen_id}", "/api/v1/screens/{screen_id}/answers",
             "/api/v1/screens/{screen_id}/assessment"}
METRICS_TOKEN = "metrics-token-0123456789abcdefghijklmnop"


class Lanes:
    """Send a request through the lane, then through FastAPI alone, and compare."""

    def __init__(self, app: FastAPI, client: TestClient) -> None:
        self.app, self.client = app, client
        lane = app.router.routes[0]
        assert isinstance(lane, HotLane)
        self.lane = lane
        self.served = 0
        handle = lane.handle

        async def counting(scope: Any, receive: Any, send: Any) -> None:
            self.served += 1
            await handle(scope, receive, send)

        lane.handle = counting  # type: ignore[method-assign]

    def send(self, method: str, path: str, *, lane: bool, **kw: Any) -> HttpResponse:
        if not lane:
            self.app.router.routes.remove(self.lane)
        try:
            return self.client.request(method, path, **kw)
        finally:
            if not lane:
                self.app.router.routes.insert(0, self.lane)

    def same(self, method: str, path: str, *, served: bool, **kw: Any) -> HttpResponse:
        before = self.served
        fast = self.send(method, path, lane=True, **kw)
        assert self.served - before == (1 if served else 0), "the lane served what it should not, or not what it should"
        slow = self.send(method, path, lane=False, **kw)
        assert (fast.status_code, fast.content) == (slow.status_code, slow.content)
        assert _headers(fast) == _headers(slow)
        return fast


def _headers(r: HttpResponse) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in r.headers.items() if k not in ("x-request-id", "date"))


@pytest.fixture
def lanes(settings: Settings, engine: Any) -> Iterator[Lanes]:
    app = create_app(settings.model_copy(update={"metrics_token": SecretStr(METRICS_TOKEN)}))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Lanes(app, client)


def test_the_lane_is_first_and_serves_the_three_hot_routes(lanes: Lanes) -> None:
    assert {lane.route.path for lane in lanes.lane.lanes} == HOT_PATHS


def test_hot_routes_answer_the_same_through_the_lane(lanes: Lanes, session: Session) -> None:
    nurse = make_user(session)
    h = headers_for(lanes.client, nurse)
    sid = create_screen(lanes.client, h)["id"]
    give_consent(lanes.client, h, sid)
    screen, answers, assessment = (f"/api/v1/screens/{sid}", f"/api/v1/screens/{sid}/answers",
                                   f"/api/v1/screens/{sid}/assessment")

    first = lanes.send("PATCH", answers, lane=True, headers=h, json={"answers": {"phq9_1": 2, "bjmhs_1": True}})
    assert first.status_code == 200 and first.json()["answers"] == {"phq9_1": 2, "bjmhs_1": True}
    # The same values again change nothing, so both paths give the same body.
    r = lanes.same("PATCH", answers, served=True, headers=h, json={"answers": {"phq9_1": 2, "bjmhs_1": True}})
    assert r.json()["revisions"] == first.json()["revisions"]
    r = lanes.same("GET", screen, served=True, headers=h)
    assert r.json()["answers"] == {"phq9_1": 2, "bjmhs_1": True}
    assert r.headers["cache-control"] == "no-store"
    r = lanes.same("GET", assessment, served=True, headers=h)
    assert r.status_code == 200 and r.json()["domains"]

    # Errors the dependency or the service raise: the lane served them, the app's handlers worded them.
    r = lanes.same("GET", screen, served=True)
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    r = lanes.same("GET", screen, served=True, headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    r = lanes.same("GET", "/api/v1/screens/no-such-screen", served=True, headers=h)
    assert r.status_code == 404
    r = lanes.same("PATCH", answers, served=True, headers=h, json={"answers": {"phq9_1": 9}})
    assert r.status_code == 422 and "answers.phq9_1" in r.text
    admin = headers_for(lanes.client, make_user(session, Role.admin))
    r = lanes.same("GET", assessment, served=True, headers=admin)
    assert r.status_code == 403

    # Bodies FastAPI rejects: the lane hands them to FastAPI, which words the 422 as for any route.
    for body in ('{"answers": {"phq9_1": 1}, "extra": 1}', '{"answers": [1]}', '{"answers": ', "", "null"):
        r = lanes.same("PATCH", answers, served=True, headers={**h, "content-type": "application/json"}, content=body)
        assert r.status_code in (400, 422) and r.headers["content-type"] == "application/problem+json", body
    # FastAPI reads the body before it checks the token: without a token, a body that is not JSON is answered
    # as such, and a JSON body that fails validation gets the 401 (the dependency runs before validation).
    r = lanes.same("PATCH", answers, served=True, headers={"content-type": "application/json"}, content='{"answers": ')
    assert r.status_code in (400, 422)
    r = lanes.same("PATCH", answers, served=True, headers={"content-type": "application/json"}, content='{"x": 1}')
    assert r.status_code == 401
    r = lanes.same("PATCH", answers, served=True, json={"answers": {"phq9_1": 1}})
    assert r.status_code == 401
    # Not matched by the lane at all: a body that is not JSON, a method the route does not take.
    r = lanes.same("PATCH", answers, served=False, headers={**h, "content-type": "text/plain"},
                   content='{"answers": {"phq9_1": 1}}')
    assert r.status_code == 422
    r = lanes.same("DELETE", screen, served=False, headers=h)
    assert r.status_code == 405

    # Nothing the rejected requests sent was written.
    assert lanes.client.get(screen, headers=h).json()["answers"] == {"phq9_1": 2, "bjmhs_1": True}


def test_lane_requests_are_measured_under_their_route(lanes: Lanes, session: Session) -> None:
    h = headers_for(lanes.client, make_user(session))
    sid = create_screen(lanes.client, h)["id"]
    series = 'screening_http_request_duration_seconds_count{method="GET",route="/api/v1/screens/{screen_id}",status="200"}'

    def count() -> float:
        text = lanes.client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
        return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(series + " ")), 0.0)

    before, served = count(), lanes.served
    assert lanes.client.get(f"/api/v1/screens/{sid}", headers=h).status_code == 200
    assert lanes.served == served + 1
    assert count() == before + 1


def test_the_lane_steps_aside_while_dependencies_are_overridden(lanes: Lanes, session: Session) -> None:
    h = headers_for(lanes.client, make_user(session))
    sid = create_screen(lanes.client, h)["id"]
    hot_transact = lanes.lane.lanes[0].dependency

    async def refuse(request: Request) -> Any:
        raise RuntimeError("overridden")

    lanes.app.dependency_overrides[hot_transact] = refuse
    try:
        served = lanes.served
        assert lanes.client.get(f"/api/v1/screens/{sid}", headers=h).status_code == 500  # FastAPI ran the override
        assert lanes.served == served
    finally:
        lanes.app.dependency_overrides.clear()
    assert lanes.client.get(f"/api/v1/screens/{sid}", headers=h).status_code == 200
    assert lanes.served == served + 1


def _app_with(route: Callable[..., Any], path: str) -> FastAPI:
    app = FastAPI()
    router = APIRouter()
    router.get(path)(route)
    app.include_router(router)
    return app


def test_the_lane_refuses_routes_it_could_not_serve_exactly() -> None:
    async def with_query(screen_id: str, hot: HotRead, q: int = 0) -> Response:
        return Response()

    async def plain_result(screen_id: str, hot: HotRead) -> dict[str, str]:
        return {}

    def sync_route(screen_id: str, hot: HotRead) -> Response:
        return Response()

    async def wants_more(request: Request, q: int = 0) -> int:
        return q

    async def odd_dependency(screen_id: str, hot: Annotated[int, Depends(wants_more)]) -> Response:
        return Response()

    async def two_dependencies(screen_id: str, hot: HotRead, n: Annotated[int, Depends(wants_more)]) -> Response:
        return Response()

    async def embedded_body(screen_id: str, hot: HotRead, body: Annotated[AnswersPatch, Body(embed=True)]) -> Response:
        return Response()

    for route in (with_query, plain_result, sync_route, odd_dependency, two_dependencies, embedded_body):
        app = _app_with(route, "/x/{screen_id}")
        with pytest.raises(ValueError, match="hot lane"):
            install(app, [route])
    with pytest.raises(ValueError, match="no route"):
        install(FastAPI(), [with_query])
