"""Concurrent requests against a real server on each database: no lost update, no duplicate screen."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from screening.config import Settings
from screening.instruments.registry import load_registry
from screening.screens.models import Answer, AnswerEvent, Screen
from tests.factories import make_user, screen_body
from tests.live import live_server

ITEMS = [i for i, it in load_registry().items.items() if it.type == "boolean"][:32]


def test_simultaneous_patches_to_one_screen_each_land(settings: Settings, engine: Engine, session: Session) -> None:
    nurse = make_user(session)
    with live_server(settings) as base:
        h = {"Authorization": f"Bearer {_token(base, nurse.username)}"}
        screen_id = httpx.post(f"{base}/api/v1/screens", json=screen_body(), headers=h).json()["id"]
        barrier = Barrier(len(ITEMS))

        def patch(item_id: str) -> int:
            with httpx.Client(base_url=base, headers=h, timeout=30) as c:
                barrier.wait()
                return c.patch(f"/api/v1/screens/{screen_id}/answers", json={"answers": {item_id: True}}).status_code

        with ThreadPoolExecutor(len(ITEMS)) as pool:
            codes = list(pool.map(patch, ITEMS))
        assert codes == [200] * len(ITEMS)
        stored = httpx.get(f"{base}/api/v1/screens/{screen_id}", headers=h).json()["answers"]
    assert stored == dict.fromkeys(ITEMS, True)
    assert session.scalar(select(func.count()).select_from(Answer)) == len(ITEMS)
    assert session.scalar(select(func.count()).select_from(AnswerEvent)) == len(ITEMS)


def test_racing_creates_with_one_key_leave_one_screen(settings: Settings, engine: Engine, session: Session) -> None:
    nurse = make_user(session)
    n = 16
    with live_server(settings) as base:
        h = {"Authorization": f"Bearer {_token(base, nurse.username)}", "Idempotency-Key": "tablet-3-retry"}
        body = screen_body()
        barrier = Barrier(n)

        def create(_: int) -> tuple[int, str]:
            with httpx.Client(base_url=base, headers=h, timeout=30) as c:
                barrier.wait()
                r = c.post("/api/v1/screens", json=body)
                return r.status_code, r.json().get("id", "")

        with ThreadPoolExecutor(n) as pool:
            results = list(pool.map(create, range(n)))
    assert {code for code, _ in results} == {201}
    assert len({sid for _, sid in results}) == 1
    assert session.scalar(select(func.count()).select_from(Screen)) == 1


def test_a_patch_racing_a_finalise_is_either_applied_before_it_or_refused(
    settings: Settings, engine: Engine, session: Session
) -> None:
    nurse = make_user(session)
    with live_server(settings) as base:
        h = {"Authorization": f"Bearer {_token(base, nurse.username)}"}
        sid = httpx.post(f"{base}/api/v1/screens", json=screen_body(), headers=h).json()["id"]
        httpx.put(f"{base}/api/v1/screens/{sid}/consent", headers=h, json={
            "screening": True, "share_with_health": True, "share_with_court": False, "capacity": "has_capacity"})
        barrier = Barrier(len(ITEMS) + 1)

        def act(item_id: str | None) -> tuple[str | None, int]:
            with httpx.Client(base_url=base, headers=h, timeout=30) as c:
                barrier.wait()
                if item_id is None:
                    return None, c.post(f"/api/v1/screens/{sid}/finalise").status_code
                return item_id, c.patch(f"/api/v1/screens/{sid}/answers", json={"answers": {item_id: True}}).status_code

        with ThreadPoolExecutor(len(ITEMS) + 1) as pool:
            results = list(pool.map(act, [None, *ITEMS]))
        final = httpx.get(f"{base}/api/v1/screens/{sid}", headers=h).json()
    assert results[0] == (None, 200)
    acknowledged = {item for item, code in results[1:] if code == 200}
    assert {code for _, code in results[1:]} <= {200, 409}
    assert final["status"] == "final"
    assert set(final["answers"]) == acknowledged


def _token(base: str, username: str) -> str:
    from tests.factories import PASSWORD

    r = httpx.post(f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])
