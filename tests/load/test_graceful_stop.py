"""A stop under load: what a rolling restart does to the tablets working on an instance.

An orchestrator stops an instance by sending SIGTERM to its main process (`docker stop`, Kubernetes), which with
several workers is gunicorn's arbiter. Here tablets keep patching answers while that happens, on SQLite and on
PostgreSQL, with one worker and with two. The service must stop taking new connections, answer every request it
has read, end each worker's lifespan (the hot routes' last group commit, the pools closed) and exit within its
grace period. Afterwards the database must hold exactly what was acknowledged: every acknowledged answer, and
none that went unanswered (a request the service had not read when it stopped fails at the tablet, which sends
it again elsewhere). Loopback only, bounded in time.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from screening.audit.service import verify_chain
from screening.auth.models import Role
from screening.ops.protocol import GRACEFUL_TIMEOUT
from screening.screens.models import Answer, AnswerEvent
from tests.factories import PASSWORD, make_user
from tests.live import served_process

pytestmark = pytest.mark.slow

TABLETS = 8
ITEMS = ("phq9_1", "phq9_2")
UNDER_LOAD = 1.5  # seconds of answers before the stop, once every tablet has had one acknowledged
WORKING_WITHIN = 30.0  # seconds for that: on a slow, shared machine 8 tablets' first answers once took over 1.5 s


@dataclass
class Tablet:
    """One tablet's own screen and what the service told it."""

    screen_id: str
    acked: list[dict[str, tuple[Any, int]]] = field(default_factory=list)  # per acknowledged PATCH: item -> (value, rev)
    statuses: list[int] = field(default_factory=list)
    errors_before_stop: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)  # the transport error that ended it, after the stop
    answered_after_stop: int = 0


def _work(base: str, token: str, tablet: Tablet, stop_sent: threading.Event) -> None:
    """Patch the tablet's screen, every PATCH changing both items, until a request fails after the stop."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        n = 0
        while True:
            n += 1
            answers = {ITEMS[0]: n % 4, ITEMS[1]: (n + 1) % 4}
            sent_after_stop = stop_sent.is_set()
            try:
                r = client.patch(f"/api/v1/screens/{tablet.screen_id}/answers", json={"answers": answers})
            except httpx.TransportError as exc:
                if not stop_sent.is_set():
                    tablet.errors_before_stop.append(type(exc).__name__)
                    return
                tablet.unanswered.append(type(exc).__name__)
                return
            tablet.statuses.append(r.status_code)
            if r.status_code != 200:
                return
            if stop_sent.is_set() and not sent_after_stop:
                tablet.answered_after_stop += 1  # in flight when the stop came, and answered
            body = r.json()
            tablet.acked.append({item: (body["answers"][item], body["revisions"][item]) for item in ITEMS})


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stop_under_load_keeps_every_acknowledged_answer_and_no_other(
    workers: int, database_url: str, engine: Any, session: Session, tmp_path: Path
) -> None:
    nurse = make_user(session, Role.nurse, ["Leeds Central"]).username
    session.commit()
    # With request lines: a worker writes one for every request it handled, when the request ends, cancelled or not
    # (a cancelled one as a 500), so the log shows every request the service read.
    with served_process(tmp_path, workers, database_url=database_url, migrate_on_start="false",
                        log_requests="true") as (base, log, process):
        token = httpx.post(f"{base}/api/v1/auth/token", data={"username": nurse, "password": PASSWORD},
                           timeout=30).json()["access_token"]
        tablets = []
        for n in range(TABLETS):
            r = httpx.post(f"{base}/api/v1/screens", headers={"Authorization": f"Bearer {token}"}, timeout=30,
                           json={"custody_record": f"STOP/{n:02d}/26", "date_of_birth": "1988-06-01", "sex": "male"})
            assert r.status_code == 201, r.text
            tablets.append(Tablet(r.json()["id"]))
        stop_sent = threading.Event()
        threads = [threading.Thread(target=_work, args=(base, token, t, stop_sent)) for t in tablets]
        for t in threads:
            t.start()
        working_by = time.monotonic() + WORKING_WITHIN
        while (not all(t.acked for t in tablets) and all(t.is_alive() for t in threads)
               and time.monotonic() < working_by):
            time.sleep(0.02)
        assert all(t.acked for t in tablets), ("every tablet was working before the stop",
                                               [(t.statuses[-3:], t.errors_before_stop) for t in tablets])
        time.sleep(UNDER_LOAD)
        stopped_at = time.monotonic()
        stop_sent.set()
        process.send_signal(signal.SIGTERM)  # to the main process only, as docker stop does
        process.wait(timeout=GRACEFUL_TIMEOUT + 10)
        took = time.monotonic() - stopped_at
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads)
    server_log = log.read_text()

    # Stopped cleanly and in time: every worker ran its lifespan's end (the last group commit, the pools closed).
    assert took < GRACEFUL_TIMEOUT, f"the stop took {took:.1f} s"
    assert server_log.count("Application shutdown complete") == workers, server_log[-3000:]
    assert "Traceback" not in server_log, server_log[-3000:]
    # uvicorn alone ends by raising the signal again once it has shut down; gunicorn's arbiter exits with 0.
    assert process.returncode == (-signal.SIGTERM if workers == 1 else 0)

    # Until the stop every request was answered, and answered 200: no 5xx, and no error of the service's own.
    assert [e for t in tablets for e in t.errors_before_stop] == []
    assert {s for t in tablets for s in t.statuses} == {200}
    # Every PATCH the service read, it answered, and the tablet heard: as many request lines, all 200, as answers
    # received. Some of those answers came after the stop was sent. Then each tablet's next request failed at the
    # transport (the listening socket closed, or its connection closed unread), as a load balancer would see.
    lines = [json.loads(line) for line in server_log.splitlines() if '"screening.request"' in line]
    patches = [line["status"] for line in lines if line["method"] == "PATCH"]
    assert patches == [200] * sum(len(t.acked) for t in tablets)
    assert sum(t.answered_after_stop for t in tablets) >= 1
    assert all(len(t.unanswered) == 1 for t in tablets), [t.unanswered for t in tablets]

    # The database holds exactly the acknowledged answers: each acknowledged PATCH is one event per item with the
    # revision and value the tablet was given, there is no event for a request that went unanswered, and each
    # answer is the last acknowledged one.
    session.expire_all()
    for t in tablets:
        for item in ITEMS:
            history = session.execute(select(AnswerEvent.revision, AnswerEvent.value).where(
                AnswerEvent.screen_id == t.screen_id, AnswerEvent.item_id == item).order_by(AnswerEvent.id)).all()
            assert [tuple(h) for h in history] == [(rev, value) for ack in t.acked for value, rev in [ack[item]]]
            current = session.get(Answer, (t.screen_id, item))
            assert current is not None and (current.value, current.revision) == t.acked[-1][item]
    assert verify_chain(session).ok
    session.rollback()
