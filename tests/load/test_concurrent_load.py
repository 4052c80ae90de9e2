"""Concurrent-load correctness: several real uvicorn workers, many simulated tablets at once.

What a national service must never do under load: answer 5xx, create a screen twice for one retried
Idempotency-Key, or acknowledge an answer that is then not in the database. Each tablet (a thread with
its own connection) opens screens, retries every create with the same key (once at the same moment
from a second thread, as a tablet on a flaky network does), and patches answers; all tablets also
patch one shared screen at once, some of them the same item. At the end the database is compared
with what the server acknowledged. Loopback only, bounded in requests and time.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from screening.audit.service import verify_chain
from screening.auth.models import Role
from screening.screens.models import Answer, AnswerEvent, Screen
from tests.factories import PASSWORD, make_user
from tests.live import served_process

pytestmark = pytest.mark.slow

WORKERS = 3
TABLETS = 12
NURSES = 4
SCREENS_PER_TABLET = 2
PATCHES_PER_SCREEN = 5
SHARED_PATCHES = 4  # per tablet, to the one screen every tablet works on
SHARED_ITEM = "phq9_9"  # the item every tablet writes at once


@pytest.fixture
def served(database_url: str, engine: Any, tmp_path: Path) -> Iterator[str]:
    """`screening serve --workers 3` on loopback, on the test's migrated database."""
    with served_process(tmp_path, WORKERS, database_url=database_url, migrate_on_start="false",
                        log_requests="false") as (base, log, _process):
        yield base
    server_log = log.read_text()
    assert "Traceback" not in server_log, server_log[-3000:]


@dataclass
class Ledger:
    """What the server acknowledged, and every status it answered."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: list[int] = field(default_factory=list)
    screens_by_key: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    last_values: dict[str, dict[str, Any]] = field(default_factory=dict)  # own screens: last acknowledged value
    acked: list[tuple[str, str, int, Any]] = field(default_factory=list)  # (screen, item, revision, value)
    patch_requests: int = 0

    def status(self, r: httpx.Response) -> httpx.Response:
        with self.lock:
            self.statuses.append(r.status_code)
        return r


def _create(client: httpx.Client, ledger: Ledger, nurse: str, key: str, body: dict[str, Any]) -> str | None:
    r = ledger.status(client.post("/api/v1/screens", json=body, headers={"Idempotency-Key": key}))
    if r.status_code != 201:
        return None
    with ledger.lock:
        ledger.screens_by_key.setdefault((nurse, key), set()).add(r.json()["id"])
    return str(r.json()["id"])


def _patch(client: httpx.Client, ledger: Ledger, screen_id: str, answers: dict[str, Any]) -> httpx.Response:
    r = ledger.status(client.patch(f"/api/v1/screens/{screen_id}/answers", json={"answers": answers}))
    with ledger.lock:
        ledger.patch_requests += 1
        if r.status_code == 200:
            body = r.json()
            for item in answers:
                ledger.acked.append((screen_id, item, body["revisions"][item], body["answers"][item]))
    return r


def _tablet(
    base: str, token: str, nurse: str, n: int, shared_id: str, ledger: Ledger, start: threading.Barrier
) -> None:
    rng = random.Random(n)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client, ThreadPoolExecutor(2) as pool:
        start.wait()
        for s in range(SCREENS_PER_TABLET):
            key = f"tablet-{n}-screen-{s}"
            body = {"custody_record": f"LOAD/{n:02d}{s}/26", "date_of_birth": "1988-06-01", "sex": "male"}
            # The same create sent twice at the same moment (a retry racing the original), then once more.
            racing = [pool.submit(_create, client, ledger, nurse, key, body) for _ in range(2)]
            ids = {f.result() for f in racing}
            screen_id = _create(client, ledger, nurse, key, body)
            assert screen_id is not None and ids == {screen_id}
            ledger.status(client.put(f"/api/v1/screens/{screen_id}/consent", json={
                "screening": True, "share_with_health": True, "share_with_court": False, "capacity": "has_capacity"}))
            for _ in range(PATCHES_PER_SCREEN):
                answers = {f"phq9_{rng.randint(1, 8)}": rng.randint(0, 3), "risk_plan": rng.random() < 0.5}
                patched = _patch(client, ledger, screen_id, answers)
                if patched.status_code == 200:
                    with ledger.lock:
                        ledger.last_values.setdefault(screen_id, {}).update(answers)
                    # Read back at once, as the tablet does, while the other tablets' reads and writes go on (on
                    # PostgreSQL the reads of the moment go as one statement): this screen, with what was
                    # acknowledged, and its assessment of the same answers.
                    read = ledger.status(client.get(f"/api/v1/screens/{screen_id}")).json()
                    acknowledged = patched.json()
                    assert (read["id"], read["answers"], read["revisions"]) == (
                        screen_id, acknowledged["answers"], acknowledged["revisions"])
                    assessed = ledger.status(client.get(f"/api/v1/screens/{screen_id}/assessment")).json()
                    missing = {m["item"] for domain in assessed["domains"].values() for m in domain["missing"]}
                    assert not missing & set(read["answers"]), "the assessment is of answers before this PATCH"
            # Interleaved with the other tablets: one item of its own and the item everyone writes.
            _patch(client, ledger, shared_id, {f"gad7_{n % 7 + 1}": n % 4, SHARED_ITEM: rng.randint(0, 3)})
        for _ in range(SHARED_PATCHES):
            answers = {SHARED_ITEM: rng.randint(0, 3), f"audit_{n % 10 + 1}": rng.randint(0, 2)}
            _patch(client, ledger, shared_id, answers)


def _token(base: str, username: str) -> str:
    r = httpx.post(f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD}, timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _route_count(metrics: str, method: str, route: str) -> float:
    pattern = (r'screening_http_request_duration_seconds_count\{method="' + method + r'",route="'
               + re.escape(route) + r'",status="(\d+)"\} ([0-9.e+]+)')
    return sum(float(m.group(2)) for m in re.finditer(pattern, metrics))


class TestConcurrentTablets:
    def test_database_holds_exactly_what_was_acknowledged(self, served: str, session: Session) -> None:
        started = time.monotonic()
        nurses = [make_user(session, Role.nurse, ["Leeds Central"]).username for _ in range(NURSES)]
        tokens = {u: _token(served, u) for u in nurses}
        shared = httpx.post(f"{served}/api/v1/screens", headers={"Authorization": f"Bearer {tokens[nurses[0]]}"},
                            json={"custody_record": "LOAD/SHARED/26", "date_of_birth": "1979-02-03", "sex": "female"},
                            timeout=30)
        assert shared.status_code == 201
        shared_id = shared.json()["id"]
        ledger = Ledger()
        start = threading.Barrier(TABLETS)
        with ThreadPoolExecutor(TABLETS) as pool:
            futures = [pool.submit(_tablet, served, tokens[nurses[n % NURSES]], nurses[n % NURSES], n, shared_id,
                                   ledger, start) for n in range(TABLETS)]
            for f in futures:
                f.result(timeout=120)

        # No 5xx, and nothing refused: every request in this scenario is valid.
        assert [s for s in ledger.statuses if s >= 500] == []
        assert set(ledger.statuses) <= {200, 201}, sorted(set(ledger.statuses))

        # Exactly one screen per Idempotency-Key, and exactly the acknowledged screens exist.
        assert all(len(ids) == 1 for ids in ledger.screens_by_key.values())
        acknowledged = {next(iter(ids)) for ids in ledger.screens_by_key.values()} | {shared_id}
        session.expire_all()
        stored = set(session.scalars(select(Screen.id)))
        assert stored == acknowledged
        assert len(stored) == TABLETS * SCREENS_PER_TABLET + 1

        # Each tablet's own screens hold its last acknowledged answers.
        for screen_id, expected in ledger.last_values.items():
            held = {a.item_id: a.value for a in session.scalars(select(Answer).where(Answer.screen_id == screen_id))}
            assert {k: held.get(k) for k in expected} == expected

        # Every acknowledged write is in the history with the revision and value the server reported,
        # revisions run 1..n without gaps or duplicates, and the current answer is the latest event.
        events: dict[tuple[str, str], list[tuple[int, Any]]] = {}
        for e in session.scalars(select(AnswerEvent)):
            events.setdefault((e.screen_id, e.item_id), []).append((e.revision, e.value))
        for screen_id, item, revision, value in ledger.acked:
            assert (revision, value) in events[(screen_id, item)], (screen_id, item, revision, value)
        for (screen_id, item), history in events.items():
            revisions = sorted(r for r, _ in history)
            assert revisions == list(range(1, len(revisions) + 1)), (item, revisions)
            current = session.get(Answer, (screen_id, item))
            assert current is not None and (current.revision, current.value) == max(history, key=lambda h: h[0])
        shared_writes = [a for a in ledger.acked if a[0] == shared_id and a[1] == SHARED_ITEM]
        assert len(shared_writes) == TABLETS * (SCREENS_PER_TABLET + SHARED_PATCHES)
        for n in range(TABLETS):  # every tablet's own item on the shared screen survived the others' writes
            assert session.get(Answer, (shared_id, f"gad7_{n % 7 + 1}")) is not None

        # The audit chain stayed one unbroken chain under concurrent appends from several processes.
        assert verify_chain(session).ok
        assert session.scalar(select(func.count()).select_from(AnswerEvent)) == sum(len(h) for h in events.values())

        session.rollback()  # end the reading transaction (on SQLite it holds the writer lock the scrape needs)

        # /metrics adds up every worker's samples: each PATCH was counted exactly once.
        metrics = httpx.get(f"{served}/metrics", timeout=10).text
        assert _route_count(metrics, "PATCH", "/api/v1/screens/{screen_id}/answers") == ledger.patch_requests
        assert time.monotonic() - started < 90
