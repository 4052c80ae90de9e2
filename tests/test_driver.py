"""The driver-level path of the tablet's hot routes (screening.driver): the same rows as the ORM, the same
audit chain, all-or-nothing transactions, and a loop that never waits on SQLite's lock."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, make_url, select
from sqlalchemy.orm import Session

from screening import db, driver, migrate
from screening.app import create_app
from screening.audit import service as audit
from screening.audit.models import AuditEntry
from screening.audit.service import SYSTEM, Actor, _chain_hash, _fields, chain_parts, verify_chain
from screening.auth.models import User
from screening.config import Settings
from screening.db import make_engine, writer_gate
from screening.driver import HotDatabase, hot_database
from screening.model.schemas import AssessmentRead
from screening.screens import store
from screening.screens.models import AnswerEvent
from screening.screens.schemas import ScreenRead
from tests.conftest import run_on_a_loop_of_its_own as _run
from tests.factories import answer, create_screen, give_consent, headers_for, make_user, served_on

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(detail=st.dictionaries(st.text(max_size=12), json_values, max_size=4), actor=st.text(min_size=1, max_size=20),
       prev=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_the_split_entry_hashes_as_the_whole_one(detail: dict[str, Any], actor: str, prev: str) -> None:
    """PostgreSQL's audit_append joins head + previous hash + tail: that must be the hash Python computes,
    whatever the entry holds (quotes, unicode, a 'prev' key of its own)."""
    fields = _fields((Actor(7, actor, "nurse", "10.0.0.1"), "screen.read", "screen", "s-1", detail, datetime.now(UTC)))
    head, tail = chain_parts(fields)
    assert hashlib.sha256((head + prev + tail).encode()).hexdigest() == _chain_hash(prev, fields)


def _hot(engine: Engine) -> HotDatabase:
    return hot_database(engine, audit.write_hot, pool_size=2)


def _audit_count(session: Session) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


def test_hot_appends_chain_with_the_orms_and_verify(engine: Engine, session: Session) -> None:
    """Entries written at driver level and through the ORM form one chain that `audit verify` accepts."""

    async def run() -> None:
        hot = _hot(engine)
        await hot.open()
        try:
            for i in range(3):
                async with hot.write() as tx:
                    audit.record_hot(tx, SYSTEM, "test.hot", "thing", str(i), {"n": i, "text": "naïve \"quoted\""})
        finally:
            await hot.close()

    _run(run())
    audit.record(session, SYSTEM, "test.orm", "thing", "x")
    session.commit()
    _run(run())
    assert _audit_count(session) == 7
    assert verify_chain(session).ok


def test_a_failed_hot_transaction_writes_nothing(engine: Engine, session: Session) -> None:
    async def run() -> None:
        hot = _hot(engine)
        await hot.open()
        try:
            with pytest.raises(RuntimeError):
                async with hot.write() as tx:
                    audit.record_hot(tx, SYSTEM, "test.hot", "thing", "1")
                    raise RuntimeError("the work failed")
            # The connection is usable again afterwards.
            async with hot.write() as tx:
                audit.record_hot(tx, SYSTEM, "test.hot", "thing", "2")
        finally:
            await hot.close()

    _run(run())
    rows = session.scalars(select(AuditEntry.record_id)).all()
    assert rows == ["2"]


def test_sqlite_waits_for_a_busy_lock_off_the_loop(tmp_path: Path) -> None:
    """Another process holding SQLite's write lock: the hot write waits in a thread, and the loop goes on.
    (SQLite's single-writer lock only: PostgreSQL's asyncio connections never block the loop.)"""
    engine = make_engine(Settings(database_url=f"sqlite:///{tmp_path}/lock.db", data_dir=tmp_path))
    migrate.upgrade(engine)
    other = sqlite3.connect(engine.url.database or "", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    ticks: list[float] = []

    async def ticker() -> None:
        for _ in range(20):
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    async def write() -> float:
        hot = _hot(engine)
        await hot.open()
        try:
            start = time.perf_counter()
            async with hot.write() as tx:
                audit.record_hot(tx, SYSTEM, "test.hot", "thing", "waited")
            return time.perf_counter() - start
        finally:
            await hot.close()

    async def run() -> float:
        release = asyncio.get_running_loop().call_later(0.15, other.execute, "COMMIT")
        try:
            waited, _ = await asyncio.gather(write(), ticker())
        finally:
            release.cancel()
        return waited

    try:
        waited = _run(run())
    finally:
        other.close()
        engine.dispose()
    assert waited >= 0.1  # it did wait for the other writer...
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) < 0.1  # ...and the loop kept running meanwhile


@pytest.mark.parametrize("shape", ["write", "append"])
def test_units_queued_behind_another_writer_commit_in_one_batch(tmp_path: Path, shape: str) -> None:
    """While another worker holds the write lock, the units that queue behind it join one batch and commit
    together once it is free, instead of each waiting for the lock in turn (the two-worker SQLite case)."""
    url = f"sqlite:///{tmp_path}/queue.db"
    engine = make_engine(Settings(database_url=url, data_dir=tmp_path))
    migrate.upgrade(engine)
    # Another worker: its own engine, so its own gate on the same lock file (an flock per open file).
    other = make_engine(Settings(database_url=url, data_dir=tmp_path))
    gate = writer_gate(other)
    assert gate.acquire()

    async def run() -> int:
        hot = _hot(engine)
        await hot.open()
        try:
            asyncio.get_running_loop().call_later(0.1, gate.release)

            async def unit(i: int) -> None:
                async with hot.write() if shape == "write" else hot.append() as tx:
                    audit.record_hot(tx, SYSTEM, "test.hot", "thing", str(i))

            before = hot._commits  # type: ignore[attr-defined]  # the driver's count of COMMITs
            await asyncio.gather(*(unit(i) for i in range(8)))
            return int(hot._commits - before)  # type: ignore[attr-defined]
        finally:
            await hot.close()

    try:
        commits = _run(run())
        with Session(engine) as session:
            assert sorted(session.scalars(select(AuditEntry.record_id))) == [str(i) for i in range(8)]
            assert verify_chain(session).ok
    finally:
        other.dispose()
        engine.dispose()
    assert commits == 1


@pytest.mark.parametrize("shape", ["write", "append"])
def test_a_batch_that_sqlite_rolled_back_itself_acknowledges_none_of_its_units(tmp_path: Path, shape: str) -> None:
    """Some errors make SQLite end the whole transaction, not just the statement: a full disk or an I/O error may,
    and an INSERT interrupted inside an explicit transaction does ("the entire transaction will be rolled back
    automatically", sqlite.org/c3ref/interrupt.html). Here the third of five units of a batch has its audit entry's
    INSERT interrupted (a progress handler on the writer connection, armed by the trace callback when that INSERT
    starts). The two units before it had been released into the batch and are gone with it: they fail, never
    acknowledged. The two after go in a new transaction, which commits; the chain links, so nothing that was rolled
    back was carried into it (the last hash kept from the lost units: `_undo_unit` and the failed `_commit` each drop
    what is kept, and the test fails only with both lines gone)."""
    url = f"sqlite:///{tmp_path}/lost.db"
    engine = make_engine(Settings(database_url=url, data_dir=tmp_path))
    migrate.upgrade(engine)
    ids = ["0", "1", "cut", "3", "4"]

    async def run() -> list[Any]:
        hot = _hot(engine)
        await hot.open()
        writer: sqlite3.Connection = hot._writer  # type: ignore[attr-defined]
        armed = False

        def started(sql: str) -> None:
            nonlocal armed
            armed = armed or ("INSERT INTO audit_entries" in sql and "'cut'" in sql)

        def interrupt() -> int:
            nonlocal armed
            cut, armed = armed, False
            return int(cut)

        writer.set_trace_callback(started)
        writer.set_progress_handler(interrupt, 1)

        async def unit(record_id: str) -> None:
            async with hot.write() if shape == "write" else hot.append() as tx:
                audit.record_hot(tx, SYSTEM, "test.hot", "thing", record_id)

        try:
            return await asyncio.gather(*(unit(i) for i in ids), return_exceptions=True)
        finally:
            writer.set_progress_handler(None, 1)
            writer.set_trace_callback(None)
            await hot.close()

    try:
        outcomes = dict(zip(ids, _run(run()), strict=True))
        with Session(engine) as session:
            assert sorted(session.scalars(select(AuditEntry.record_id))) == ["3", "4"]
            assert verify_chain(session).ok
    finally:
        engine.dispose()
    assert str(outcomes["cut"]) == "interrupted"
    for lost in ("0", "1"):
        assert isinstance(outcomes[lost], sqlite3.OperationalError)
        assert str(outcomes[lost]) == "the batch's transaction was rolled back by SQLite (OperationalError)"
    assert outcomes["3"] is None and outcomes["4"] is None


def test_an_append_holds_the_write_lock_only_while_it_is_written(tmp_path: Path) -> None:
    """An append (a read's audit entry) waits for the write lock in a queue, and one task writes and commits
    those waiting in one step: whenever the loop runs other work, another worker finds the lock free. A unit of
    `write()` holds it from its BEGIN until the loop reaches the COMMIT."""
    url = f"sqlite:///{tmp_path}/lock.db"
    engine = make_engine(Settings(database_url=url, data_dir=tmp_path))
    migrate.upgrade(engine)
    other_engine = make_engine(Settings(database_url=url, data_dir=tmp_path))
    other = writer_gate(other_engine)  # another worker's gate on the same lock file

    async def run(shape: str) -> list[bool]:
        hot = _hot(engine)
        await hot.open()
        free: list[bool] = []

        async def unit(i: int) -> None:
            async with hot.write() if shape == "write" else hot.append() as tx:
                audit.record_hot(tx, SYSTEM, "test.hot", "thing", f"{shape}-{i}")

        async def other_work() -> None:
            for _ in range(6):
                got = other.try_acquire()
                if got:
                    other.release()
                free.append(got)
                await asyncio.sleep(0)

        try:
            await asyncio.gather(*(unit(i) for i in range(4)), other_work())
        finally:
            await hot.close()
        return free

    try:
        assert all(_run(run("append")))
        assert not all(_run(run("write")))  # the contrast: a write's batch is held across the loop's other work
        with Session(engine) as session:
            assert len(session.scalars(select(AuditEntry.record_id)).all()) == 8
            assert verify_chain(session).ok
    finally:
        other_engine.dispose()
        engine.dispose()


def test_appends_fail_rather_than_hang_when_the_lock_never_comes(tmp_path: Path) -> None:
    """Another writer keeps the write lock past the gate's timeout: the queued appends fail with 'database is
    locked' (the request answers an error), and the next appends, once the lock is free, go through."""
    url = f"sqlite:///{tmp_path}/held.db"
    engine = make_engine(Settings(database_url=url, data_dir=tmp_path))
    migrate.upgrade(engine)
    other_engine = make_engine(Settings(database_url=url, data_dir=tmp_path))
    other = writer_gate(other_engine)
    writer_gate(engine).timeout = 0.2  # the real gate, waiting 0.2 s instead of 15

    async def run() -> tuple[list[Any], list[Any]]:
        hot = _hot(engine)
        await hot.open()

        async def append(i: int) -> None:
            async with hot.append() as tx:
                audit.record_hot(tx, SYSTEM, "test.hot", "thing", str(i))

        try:
            assert other.acquire()
            try:
                held = await asyncio.wait_for(asyncio.gather(*(append(i) for i in range(3)), return_exceptions=True), 5)
            finally:
                other.release()
            return held, await asyncio.gather(*(append(i) for i in range(3, 5)), return_exceptions=True)
        finally:
            await hot.close()

    try:
        held, later = _run(run())
        with Session(engine) as session:
            assert sorted(session.scalars(select(AuditEntry.record_id))) == ["3", "4"]
    finally:
        other_engine.dispose()
        engine.dispose()
    assert all(isinstance(o, sqlite3.OperationalError) and "locked" in str(o) for o in held), held
    assert later == [None, None]


def test_the_write_ahead_log_starts_again_under_steady_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commits one after another with no pause, as under load: once the log is longer than RESTART_AFTER_BYTES, a
    checkpoint starts it again from its beginning, so its file stops growing (before, it grew with every commit
    for as long as the writes went on: a PASSIVE checkpoint never catches up with the last commit). And a burst
    that grew the file past WAL_SIZE_LIMIT is cut back once the log starts again."""
    monkeypatch.setattr(driver, "CHECKPOINT_EVERY", 50)
    monkeypatch.setattr(driver, "RESTART_AFTER_BYTES", 1024 * 1024)
    monkeypatch.setattr(db, "WAL_SIZE_LIMIT", 16 * 1024 * 1024)  # read by each connection's set-up
    engine = make_engine(Settings(database_url=f"sqlite:///{tmp_path}/wal.db", data_dir=tmp_path))
    migrate.upgrade(engine)
    wal = tmp_path / "wal.db-wal"
    commits = 3000

    async def commit(i: int, pad: int = 2000, entries: int = 1) -> None:
        async with hot.write() as tx:
            for _ in range(entries):
                audit.record_hot(tx, SYSTEM, "test.hot", "thing", str(i), {"pad": "x" * pad})

    async def run() -> tuple[int, int, int, int]:
        await hot.open()
        try:
            for i in range(commits):
                await commit(i)
                if i == 49:
                    first = wal.stat().st_size  # 50 commits' frames: no checkpoint has run yet
            steady = wal.stat().st_size
            await commit(-1, pad=2_000_000, entries=12)  # one transaction of some 24 MB
            burst = wal.stat().st_size
            deadline = time.monotonic() + 30
            while wal.stat().st_size > db.WAL_SIZE_LIMIT and time.monotonic() < deadline:
                await commit(-2)
                await asyncio.sleep(0.01)  # let the checkpoint's thread finish
            return first, steady, burst, wal.stat().st_size
        finally:
            await hot.close()

    hot = _hot(engine)
    try:
        first, steady, burst, after = _run(run())
    finally:
        engine.dispose()
    written = first / 50 * commits
    assert steady < written / 3, (first, steady)
    assert burst > db.WAL_SIZE_LIMIT >= after, (burst, after)


def test_a_batching_task_cancelled_leaves_no_request_waiting(engine: Engine) -> None:
    """The task that serves a queue (PostgreSQL's reads, SQLite's appends) cancelled mid-batch, as at a hard
    shutdown: what it was serving is cancelled rather than left waiting for ever, and the queue serves the
    next requests."""
    from sqlalchemy import Integer, bindparam

    doubled = select(bindparam("n", type_=Integer) * 2)
    postgres = engine.dialect.name == "postgresql"

    async def queued(hot: HotDatabase, i: int) -> Any:
        if postgres:
            return (await hot.read_one(doubled, {"n": i}) or (None,))[0]
        async with hot.append() as tx:
            audit.record_hot(tx, SYSTEM, "test.hot", "thing", f"cancel-{i}")
        return 2 * i

    async def run() -> tuple[list[Any], list[Any]]:
        hot = _hot(engine)
        await hot.open()
        try:
            first = [asyncio.ensure_future(queued(hot, i)) for i in range(3)]
            await asyncio.sleep(0)  # the requests queue, and the serving task is created
            task = hot._reading if postgres else hot._appender  # type: ignore[attr-defined]
            assert task is not None
            task.cancel()
            cut = await asyncio.wait_for(asyncio.gather(*first, return_exceptions=True), 5)
            return cut, await asyncio.wait_for(asyncio.gather(*(queued(hot, i) for i in range(3, 5))), 5)
        finally:
            await hot.close()

    cut, later = _run(run())
    assert all(isinstance(o, asyncio.CancelledError) for o in cut), cut
    assert later == [6, 8]


def test_hot_rows_read_back_through_the_orm(client: TestClient, session: Session) -> None:
    """Answers, history and times written at driver level are what the ORM reads (same types and formats)."""
    h = headers_for(client, make_user(session))
    s = create_screen(client, h)
    patched = answer(client, h, s["id"], {"phq9_1": 2, "bjmhs_8": True, "audit_9": 1})
    session.expire_all()
    history = client.get(f"/api/v1/screens/{s['id']}/answers/history", headers=h).json()  # ORM path
    assert {e["item_id"]: e["value"] for e in history} == {"phq9_1": 2, "bjmhs_8": True, "audit_9": 1}
    assert all(isinstance(e["value"], bool) == (e["item_id"] == "bjmhs_8") for e in history)
    finalised = client.post(f"/api/v1/screens/{s['id']}/finalise", headers=h)  # ORM path: needs consent first
    assert finalised.status_code == 409
    give_consent(client, h, s["id"])
    final = client.post(f"/api/v1/screens/{s['id']}/finalise", headers=h).json()
    assert final["answers"] == patched["answers"]
    assert final["revisions"] == patched["revisions"]
    assert datetime.fromisoformat(final["updated_at"]) >= datetime.fromisoformat(patched["updated_at"])


def test_hot_bodies_are_their_response_models(client: TestClient, session: Session) -> None:
    """The hot routes serialise their own bodies: each must be exactly what its response model gives."""
    h = headers_for(client, make_user(session))
    s = create_screen(client, h)
    give_consent(client, h, s["id"])
    for r in (
        client.patch(f"/api/v1/screens/{s['id']}/answers", json={"answers": {"phq9_1": 2, "ldc_reading_help": True}},
                     headers=h),
        client.get(f"/api/v1/screens/{s['id']}", headers=h),
    ):
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        body = json.loads(r.content)
        assert ScreenRead.model_validate_json(r.content).model_dump(mode="json") == body
        assert body["consent"]["capacity"] == "has_capacity"
    r = client.get(f"/api/v1/screens/{s['id']}/assessment", headers=h)
    assert r.status_code == 200
    assert AssessmentRead.model_validate_json(r.content).model_dump(mode="json") == json.loads(r.content)


def test_a_read_after_each_change_shows_it(client: TestClient, session: Session) -> None:
    """Reads are memoised on the row the database returns: every change must show in the next read."""
    h = headers_for(client, make_user(session))
    s = create_screen(client, h)
    url = f"/api/v1/screens/{s['id']}"
    first = client.get(url, headers=h).json()
    assert first["consent"] is None and first["answers"] == {}
    give_consent(client, h, s["id"], share_with_court=False)
    assert client.get(url, headers=h).json()["consent"]["share_with_court"] is False
    for value in (1, 2, 1):
        answer(client, h, s["id"], {"phq9_1": value})
        read = client.get(url, headers=h).json()
        assert read["answers"]["phq9_1"] == value
        assessed = client.get(url + "/assessment", headers=h).json()
        assert assessed["domains"]["mental_health"]["contributions"]
    answer(client, h, s["id"], {"phq9_1": None})
    assert "phq9_1" not in client.get(url, headers=h).json()["answers"]
    give_consent(client, h, s["id"])
    assert client.post(url + "/finalise", headers=h).status_code == 200
    assert client.get(url, headers=h).json()["status"] == "final"


def test_a_patch_sees_what_other_workers_and_the_orm_committed_since_its_last(
        client: TestClient, session: Session, settings: Settings) -> None:
    """A write on SQLite's writer connection keeps the screen it left (screens.store.keep) and the chain's last hash
    for its next write, until another connection commits. Here another worker changes the same answer, the ORM
    (this worker's other connections) changes consent, chains audit entries and revokes the nurse between PATCHes
    of one worker: each next PATCH must see it. On PostgreSQL nothing is kept; the same must hold."""
    nurse = make_user(session)
    h = headers_for(client, nurse)
    sid = create_screen(client, h)["id"]
    url = f"/api/v1/screens/{sid}/answers"
    answer(client, h, sid, {"phq9_1": 1})
    answer(client, h, sid, {"phq9_2": 1})  # a write that follows this worker's own: the kept screen serves it
    with TestClient(create_app(settings), raise_server_exceptions=False) as other:
        moved = answer(other, h, sid, {"phq9_1": 2, "gad7_1": 3})
    assert moved["revisions"]["phq9_1"] == 2
    # Sent against the other worker's revision: no conflict, and the other worker's answers are in the reply.
    r = client.patch(url, json={"answers": {"phq9_1": 3}, "expected_revisions": {"phq9_1": 2}}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["answers"] == {"phq9_1": 3, "phq9_2": 1, "gad7_1": 3}
    assert r.json()["revisions"]["phq9_1"] == 3
    # Sent against a revision this worker last saw, now stale: a conflict, not an overwrite.
    r = client.patch(url, json={"answers": {"phq9_1": 0}, "expected_revisions": {"phq9_1": 1}}, headers=h)
    assert r.status_code == 409, r.text
    give_consent(client, h, sid, share_with_court=False)  # the ORM path, on another connection
    assert answer(client, h, sid, {"phq9_3": 1})["consent"]["share_with_court"] is False
    audit.record(session, SYSTEM, "test.orm", "thing", "x")  # the chain moves on outside the hot path
    session.commit()
    assert answer(client, h, sid, {"phq9_4": 1})["answers"]["phq9_4"] == 1
    session.get(User, nurse.id).active = False  # type: ignore[union-attr]
    session.commit()
    r = client.patch(url, json={"answers": {"phq9_5": 1}}, headers=h)
    assert r.status_code == 401, r.text
    session.expire_all()
    assert verify_chain(session).ok
    history = session.scalars(select(AnswerEvent.value).where(AnswerEvent.item_id == "phq9_1")
                              .order_by(AnswerEvent.revision)).all()
    assert history == [1, 2, 3]


def test_a_patch_after_its_own_reads_no_row_and_keeps_what_the_database_holds(tmp_path: Path) -> None:
    """On SQLite, a PATCH that follows this connection's own write, with no other commit between, runs no load
    and no read of the chain's last hash; what it keeps is what a load from the database returns."""
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    engine = make_engine(Settings(database_url=url, data_dir=tmp_path))
    migrate.upgrade(engine)
    engine.dispose()
    with served_on(url, tmp_path) as (client, _session, h, screen_url):
        hot = client.app.state.hot  # type: ignore[attr-defined]
        sid = screen_url.rsplit("/", 1)[1]
        ran: list[str] = []
        hot._writer.set_trace_callback(ran.append)

        def patch(body: dict[str, Any], status: int = 200) -> list[str]:
            ran.clear()
            r = client.patch(screen_url + "/answers", json=body, headers=h)
            assert r.status_code == status, r.text
            return [sql for sql in ran if sql.startswith("SELECT")]

        assert any("json_group_array" in sql for sql in patch({"answers": {"phq9_1": 1}}))  # read once
        for body, status in (({"answers": {"phq9_1": 2, "bjmhs_1": True}}, 200), ({"answers": {"phq9_1": None}}, 200),
                             ({"answers": {"phq9_1": 0}, "expected_revisions": {"phq9_1": 3}}, 200),
                             ({"answers": {"phq9_1": 2}, "expected_revisions": {"phq9_1": 99}}, 409)):  # 409: no change
            assert patch(body, status) == []
            kept = hot._kept["screens.kept"][sid]
            fresh = _run(store.load(hot, kept.user.id, sid))
            assert (kept.user, kept.screen, kept.answers, kept.consent, kept.names) == (
                fresh.user, fresh.screen, fresh.answers, fresh.consent, fresh.names)
        assert {k: type(a.value) for k, a in kept.answers.items()} == {"phq9_1": int, "bjmhs_1": bool}
        give_consent(client, h, sid)  # committed on the ORM's connection: the next PATCH reads again
        assert any("json_group_array" in sql for sql in patch({"answers": {"phq9_2": 1}}))
        assert patch({"answers": {"phq9_2": 2}}) == []

        # A transaction whose COMMIT fails keeps nothing. A foreign key broken in the PATCH's own unit, and deferred,
        # fails the COMMIT only after the unit has kept what it wrote.
        hook = hot.before_commit

        async def breaking(tx: Any) -> None:
            await hook(tx)
            tx.cursor.execute("PRAGMA defer_foreign_keys=ON")
            tx.cursor.execute("INSERT INTO answers (screen_id, item_id, value, revision, updated_by_id, updated_at) "
                              "VALUES ('no-such-screen', 'phq9_1', '1', 1, 1, '2026-01-01 00:00:00')")

        hot.before_commit = breaking
        try:
            assert client.patch(screen_url + "/answers", json={"answers": {"phq9_2": 3}}, headers=h).status_code == 500
        finally:
            hot.before_commit = hook
        ran.clear()
        r = client.patch(screen_url + "/answers", json={"answers": {"gad7_2": 1}}, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["answers"]["phq9_2"] == 2 and r.json()["revisions"]["phq9_2"] == 2
        assert any("json_group_array" in sql for sql in ran)


def test_one_bad_append_fails_alone_in_its_batch(engine: Engine, session: Session) -> None:
    """Appends and writes of the same moment commit together (group commit); one that fails (here an
    assessment record for a screen that does not exist: a foreign-key violation) fails alone."""
    from screening.model.assessments import _record

    async def good(i: int) -> None:
        async with hot.append() as tx:
            audit.record_hot(tx, SYSTEM, "test.read", "thing", f"good-{i}")

    async def bad() -> None:
        async with hot.append() as tx:
            tx.add(_record, {"screen_id": "no-such-screen", "model_version": "v", "model_sha256": "x",
                             "assessed_at": datetime.now(UTC), "assessed_by_id": 1, "result": "{}"})
            audit.record_hot(tx, SYSTEM, "test.read", "thing", "bad")

    async def failing_write() -> None:
        async with hot.write() as tx:
            audit.record_hot(tx, SYSTEM, "test.write", "thing", "raised")
            raise RuntimeError("the unit's own work failed")

    async def run() -> list[Any]:
        await hot.open()
        try:
            return await asyncio.gather(*(good(i) for i in range(5)), bad(), failing_write(),
                                        *(good(i) for i in range(5, 10)), return_exceptions=True)
        finally:
            await hot.close()

    hot = _hot(engine)
    outcomes = _run(run())
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failures) == 2 and isinstance(failures[1], RuntimeError)
    session.rollback()
    recorded = set(session.scalars(select(AuditEntry.record_id)).all())
    assert recorded == {f"good-{i}" for i in range(10)}
    assert verify_chain(session).ok


def test_concurrent_reads_get_their_own_rows_and_fail_alone(engine: Engine) -> None:
    """Reads of the same moment each get their own rows. On PostgreSQL they go in one pipeline, one round trip
    on one connection (so in one transaction: the same transaction_timestamp), those of one statement as one
    executemany; a read that fails there fails alone, the batch's others tried again one by one."""
    from sqlalchemy import Integer, bindparam, literal, null

    doubled = select(bindparam("n", type_=Integer) * 2, func.transaction_timestamp() if engine.dialect.name ==
                     "postgresql" else null())
    failing = select(literal(1) / bindparam("d", type_=Integer))  # division by zero: an error on PostgreSQL
    # None, one or several rows: n - 1 of them.
    counting = select(AuditEntry.id).where(AuditEntry.id < 0).union_all(
        *(select(literal(k)).where(bindparam("n", type_=Integer) > k) for k in range(1, 4)))

    async def run() -> tuple[list[Any], list[Any], list[Any]]:
        await hot.open()
        try:
            together = await asyncio.gather(*(hot.read_one(doubled, {"n": i}) for i in range(10)))
            reads = [hot.read_one(doubled, {"n": i}) for i in range(10)]
            if engine.dialect.name == "postgresql":
                reads.insert(5, hot.read_one(failing, {"d": 0}))
            outcomes = await asyncio.gather(*reads, return_exceptions=True)
            mixed = await asyncio.gather(*(hot.read_all(doubled if i % 2 else counting, {"n": i % 5})
                                           for i in range(10)))
            return together, outcomes, mixed
        finally:
            await hot.close()

    hot = _hot(engine)
    together, outcomes, mixed = _run(run())
    assert [row[0] for row in together] == [2 * i for i in range(10)]
    if engine.dialect.name == "postgresql":
        assert len({row[1] for row in together}) == 1  # one transaction: one round trip
        assert isinstance(outcomes.pop(5), Exception)
    assert [row[0] for row in outcomes] == [2 * i for i in range(10)]
    assert [[r[0] for r in rows] for rows in mixed] == [
        [2 * (i % 5)] if i % 2 else list(range(1, i % 5)) for i in range(10)]


def test_keyed_reads_of_the_moment_go_as_one_statement_each_with_its_own_row(engine: Engine) -> None:
    """Reads of one `Keyed` statement: on PostgreSQL those of the moment go as one statement (its `many` form, so
    one statement_timestamp for them all), each still given only its own row, and none where its keys find none. A
    batch that fails is tried again read by read, so a bad read fails alone."""
    from sqlalchemy import ColumnElement, Integer, String, literal, null

    postgres = engine.dialect.name == "postgresql"

    def build(dialect: str, n: ColumnElement[Any], word: ColumnElement[Any]) -> Any:
        # No row for n = 0; on PostgreSQL, a division by zero for n = -1.
        started = func.statement_timestamp() if dialect == "postgresql" else null()
        return select(n * 2, word, started, literal(1).op("/", return_type=Integer)((n + 1).self_group())).where(n != 0)

    keyed = driver.Keyed(build, (("n", Integer()), ("word", String())))

    async def run() -> tuple[list[Any], list[Any], list[Any]]:
        await hot.open()
        try:
            together = await asyncio.gather(*(hot.read_all(keyed, {"n": n, "word": f"w{n}"}) for n in range(8)))
            alone = [await hot.read_all(keyed, {"n": n, "word": f"w{n}"}) for n in range(8)]
            reads = [hot.read_one(keyed, {"n": n, "word": f"w{n}"}) for n in range(1, 8)]
            reads.insert(3, hot.read_one(keyed, {"n": -1, "word": "bad"}))
            if postgres:  # planned once per connection, not afresh on every run (driver._generic_plans)
                assert await hot.read_one(select(func.current_setting("plan_cache_mode")), {}) == ("force_generic_plan",)
            return together, alone, await asyncio.gather(*reads, return_exceptions=True)
        finally:
            await hot.close()

    hot = _hot(engine)
    together, alone, outcomes = _run(run())
    assert [[r[:2] for r in rows] for rows in together] == [[] if n == 0 else [(2 * n, f"w{n}")] for n in range(8)]
    assert [[r[:2] for r in rows] for rows in alone] == [[r[:2] for r in rows] for rows in together]
    if postgres:
        assert len({rows[0][2] for rows in together if rows}) == 1  # one statement
        assert len({rows[0][2] for rows in alone if rows}) == 7  # one each
        assert isinstance(outcomes.pop(3), Exception)
    else:
        outcomes.pop(3)  # SQLite divides by zero as null
    assert [row[:2] for row in outcomes] == [(2 * n, f"w{n}") for n in range(1, 8)]


def test_loads_of_the_moment_are_the_loads_one_by_one(client: TestClient, session: Session, engine: Engine) -> None:
    """The screen's load and the assessment's, read together (on PostgreSQL as one statement each) and one at a time:
    the same rows, and nothing for a screen that does not exist or a user who does not."""
    from screening.routes import hot as routes_hot
    from screening.screens import store

    nurse = make_user(session)
    h = headers_for(client, nurse)
    ids = []
    for n in range(4):
        s = create_screen(client, h)
        give_consent(client, h, s["id"])
        answer(client, h, s["id"], {"phq9_1": n, "ldc_reading_help": bool(n % 2)})
        ids.append(s["id"])
    keys = [(nurse.id, sid) for sid in ids] + [(nurse.id, "no-such-screen"), (nurse.id + 1000, ids[0])]

    async def run() -> tuple[list[Any], list[Any]]:
        await hot.open()
        try:
            statements = (store.load_statement, routes_hot.load_statement)
            together = await asyncio.gather(*(hot.read_all(stmt, {"user_id": u, "screen_id": sid})
                                              for stmt in statements for u, sid in keys))
            alone = [await hot.read_all(stmt, {"user_id": u, "screen_id": sid}) for stmt in statements for u, sid in keys]
            return together, alone
        finally:
            await hot.close()

    hot = _hot(engine)
    together, alone = _run(run())
    assert together == alone
    found = [[row[7] for row in rows] for rows in alone]  # the screen's id, after the user's columns
    assert found == 2 * ([[sid] for sid in ids] + [[None], []])


@settings(max_examples=300, deadline=None)
@given(shapes=st.lists(st.lists(st.sampled_from("ABC"), max_size=4), min_size=1, max_size=8))
def test_a_batch_of_appends_keeps_each_units_order(shapes: list[list[str]]) -> None:
    """A batch of appends on PostgreSQL sends each statement's rows together (`driver._merged`): every row
    once, and each unit's statements in the order it made them (a later one may depend on an earlier)."""
    statements = {name: driver.Compiled(name, (), ()) for name in "ABC"}
    units: list[Any] = [([(statements[name], [{"unit": u, "n": n}]) for n, name in enumerate(shape)], None, None)
                        for u, shape in enumerate(shapes)]
    sent = [(stmt.sql, row["unit"], row["n"]) for stmt, rows in driver._merged(units) for row in rows]
    assert sorted(sent) == sorted((name, u, n) for u, shape in enumerate(shapes) for n, name in enumerate(shape))
    for u, shape in enumerate(shapes):
        assert [n for _, unit, n in sent if unit == u] == list(range(len(shape)))
    assert all(len(queued) == len(shape) for (queued, *_), shape in zip(units, shapes, strict=True))  # untouched


def test_appends_of_one_shape_go_as_one_statement_each() -> None:
    record, entry = driver.Compiled("record", (), ()), driver.Compiled("audit", (), ())
    assessments = [([(record, [{"n": n}]), (entry, [{"n": n}])], None, None) for n in range(16)]
    reads: list[Any] = [([(entry, [{"n": n}])], None, None) for n in range(16)]
    assert [(stmt.sql, len(rows)) for stmt, rows in driver._merged(assessments)] == [("record", 16), ("audit", 16)]
    assert [(stmt.sql, len(rows)) for stmt, rows in driver._merged(reads)] == [("audit", 16)]


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A migrated PostgreSQL database of this module's own (it terminates connections to it)."""
    from tests.conftest import _migrate, _postgres_database

    for url in _postgres_database():
        _migrate(url, tmp_path_factory.mktemp("pg-failover"))
        yield url


def test_after_a_failover_the_hot_pool_replaces_its_connections_at_the_first_it_finds_cut(
        pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A failover or a restarted PostgreSQL cuts every connection. The hot routes' pool does not ping (a round trip
    per tap), so the first request to meet a dead connection finds it: a write fails, as a 503 that says to send it
    again, and the pool replaces all its connections made before. The write sent again, and the reads after it, go
    through on new ones, and the audit chain stays whole. (A read that finds a dead connection is tried again on a
    new one: `test_requests_get_through_in_time_when_the_network_to_the_database_goes_silent`.)"""
    from sqlalchemy import create_engine, text

    with served_on(pg_url, tmp_path) as (client, session, h, url):
        admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
        hot = text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                   "AND application_name = 'screening-hot'")
        with admin.connect() as conn:
            cut = set(conn.execute(hot).scalars())
            assert len(cut) == 2
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:pids AS int[])) AS pid"),
                         {"pids": list(cut)})
        patched = client.patch(url + "/answers", json={"answers": {"phq9_1": 2}}, headers=h)
        assert (patched.status_code, patched.headers["retry-after"]) == (503, "1"), patched.text
        assert patched.headers["content-type"] == "application/problem+json"
        assert patched.json()["detail"] == "The database did not answer. Try again in a moment."
        # The tablet sends it again: on a new connection, where it had met the pool's other dead one.
        assert client.patch(url + "/answers", json={"answers": {"phq9_1": 2}}, headers=h).status_code == 200
        assert [client.get(url, headers=h).status_code for _ in range(6)] == [200] * 6
        with admin.connect() as conn:
            assert len(set(conn.execute(hot).scalars()) - cut) == 2
        admin.dispose()
        # Logged as a warning naming the route's template and the error's type, never the path (it holds the id).
        warned = [r.getMessage() for r in caplog.records if r.name == "screening.errors"]
        assert len(warned) == 1 and warned[0].startswith(
            "database unavailable on PATCH /api/v1/screens/{screen_id}/answers: "), warned
        assert url.rsplit("/", 1)[1] not in warned[0]
        session.rollback()
        events = select(func.count()).where(AnswerEvent.screen_id == url.rsplit("/", 1)[1])
        assert session.scalar(events) == 1  # the acknowledged change alone


def test_hot_requests_fail_fast_while_the_database_refuses_connections(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the database is away (here it refuses every new connection), a hot request waits for a connection
    `POOL_WAIT` seconds at most and is answered 503, where it had waited a minute and more (psycopg_pool's default
    wait, then as long again for the read alone). Once the database is back, the pool reconnects on its own."""
    from sqlalchemy import create_engine, text

    wait = 2.0  # shorter than the service's own, to keep the test short
    monkeypatch.setattr(driver, "POOL_WAIT", wait)
    name = make_url(pg_url).database
    # ALTER DATABASE from another database: this one will refuse connections.
    admin = create_engine(make_url(pg_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with served_on(pg_url, tmp_path) as (client, _session, h, url):
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name "
                                  "AND pid <> pg_backend_pid()"), {"name": name})
            # The pool's two dead connections fail the first two at once; the rest wait for a connection, then fail.
            for request in [lambda: client.get(url, headers=h)] * 3 + [
                    lambda: client.patch(url + "/answers", json={"answers": {"phq9_1": 1}}, headers=h)]:
                started = time.monotonic()
                r = request()
                took = time.monotonic() - started
                assert (r.status_code, r.headers.get("retry-after")) == (503, "1"), r.text
                assert took < wait + 1.5, f"{r.request.method} waited {took:.1f} s"
            # A route on the ORM's pool (the screen list) meets the refusal at once, through SQLAlchemy's error.
            started = time.monotonic()
            listed = client.get("/api/v1/screens", headers=h)
            assert (listed.status_code, listed.headers.get("retry-after")) == (503, "1"), listed.text
            assert time.monotonic() - started < wait
            assert client.get("/health/ready").status_code == 503
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
            deadline = time.monotonic() + 30
            while client.get(url, headers=h).status_code != 200:
                assert time.monotonic() < deadline, "the hot pool did not reconnect in 30 s"
            assert client.patch(url + "/answers", json={"answers": {"phq9_1": 1}}, headers=h).status_code == 200
    finally:
        with admin.connect() as conn:  # whatever happened above: later tests use this database
            conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        admin.dispose()


def test_a_route_on_the_orms_pool_waits_no_longer_than_the_pool_wait_for_a_connection(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The routes that take an ORM session share its pool (`db_pool_size` connections and as many again), and run in a
    thread pool of 40: slow work can hold every connection. A request then waits `POOL_WAIT` for one and is answered
    503, where SQLAlchemy's default wait had held it 30 s; once a connection is free, it goes through."""
    wait = 1.0  # shorter than the service's own, to keep the test short
    monkeypatch.setattr(db, "POOL_WAIT", wait)
    with served_on(pg_url, tmp_path, db_pool_size=1) as (client, _session, h, _url):
        engine = client.app.state.engine  # type: ignore[attr-defined]
        held = [engine.connect() for _ in range(2)]  # the pool's one connection and its one overflow, busy
        try:
            started = time.monotonic()
            r = client.get("/api/v1/auth/me", headers=h)
            took = time.monotonic() - started
            assert (r.status_code, r.headers.get("retry-after")) == (503, "1"), r.text
            assert wait <= took < wait + 1.5, f"answered after {took:.1f} s"
        finally:
            for conn in held:
                conn.close()
        assert client.get("/api/v1/auth/me", headers=h).status_code == 200


def test_a_database_that_never_answers_fails_a_new_connection_in_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host that takes the connection and says nothing (cut off mid-handshake, or packets swallowed): libpq would
    wait for ever; the service's connections give up after `CONNECT_TIMEOUT`, as an error that counts as the
    database being away (503). A URL that sets its own `connect_timeout` keeps it."""
    import socket

    from sqlalchemy.exc import OperationalError

    from screening.errors import database_unavailable

    monkeypatch.setattr(db, "CONNECT_TIMEOUT", 1)
    with socket.socket() as silent:  # listens, so the kernel completes the handshake; never reads or answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"postgresql+psycopg://postgres@127.0.0.1:{silent.getsockname()[1]}/nowhere"
        engine = make_engine(Settings(environment="test", database_url=url, data_dir=tmp_path))
        try:
            started = time.monotonic()
            with pytest.raises(OperationalError) as raised:
                engine.connect()
            assert time.monotonic() - started < 3
            assert database_unavailable(raised.value)
        finally:
            engine.dispose()
    assert "connect_timeout" not in db.connect_args(make_url(url + "?connect_timeout=9"))
    assert db.connect_args(make_url(url))["connect_timeout"] == 1
    # The same holds for the network's other bounds (test_requests_get_through_in_time_when_the_network_...).
    assert {"keepalives", "tcp_user_timeout"}.isdisjoint(db.connect_args(make_url(url + "?keepalives=0&tcp_user_timeout=0")))
    # The server's limits go before the URL's own options, which thus win (test_an_instance_stopped_mid_transaction...).
    options = db.connect_args(make_url(url + "?options=-c%20lock_timeout%3D0%20-c%20search_path%3Dx"))["options"]
    assert options == (f"-c lock_timeout={db.LOCK_TIMEOUT * 1000} "
                       f"-c idle_in_transaction_session_timeout={db.IDLE_IN_TRANSACTION_TIMEOUT * 1000} "
                       "-c lock_timeout=0 -c search_path=x")


@contextmanager
def _network_silent(links: list[tuple[int, int | None]], *, lifted_after: float) -> Iterator[None]:
    """Every packet dropped between each server port and its client port (None: any), both ways, as a network cut
    does: nothing is refused or reset, the packets are just lost. Lifted on the way out, and after `lifted_after`
    seconds whatever the test is doing, so that a request that would wait out TCP's own 15 minutes fails the test
    instead of hanging it."""
    import os
    import re
    import shlex
    import shutil
    import subprocess
    import threading

    if shutil.which("iptables") is None:
        pytest.skip("needs iptables to drop packets (Debian package iptables; scripts/bootstrap.sh dev installs it)")
    # Each rule names the process that added it. A test process killed before it lifted its rules would leave them
    # dropping the packets of whatever next took those ports: those of processes gone are deleted first.
    listed = subprocess.run(["iptables", "-S", "INPUT"], capture_output=True, text=True).stdout.splitlines()
    for line in listed:
        if (found := re.search(r'--comment "?screening-test-(\d+)', line)) and not Path(f"/proc/{found[1]}").exists():
            subprocess.run(["iptables", *shlex.split(line.replace("-A", "-D", 1))], capture_output=True)
    tag = ["-m", "comment", "--comment", f"screening-test-{os.getpid()}"]
    rules = [["INPUT", "-p", "tcp", *ends, *tag, "-j", "DROP"] for server, client in links for ends in (
        ["--sport", str(server), *(["--dport", str(client)] if client else [])],
        ["--dport", str(server), *(["--sport", str(client)] if client else [])])]
    added: list[list[str]] = []
    lock = threading.Lock()

    def lift() -> None:
        with lock:
            while added:
                subprocess.run(["iptables", "-D", *added.pop()], check=True, capture_output=True)

    for rule in rules:
        done = subprocess.run(["iptables", "-A", *rule], capture_output=True, text=True)
        if done.returncode != 0:
            lift()
            pytest.skip(f"iptables may not add a rule here (needs root, or CAP_NET_ADMIN): {done.stderr.strip()}")
        added.append(rule)
    timer = threading.Timer(lifted_after, lift)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        lift()


def test_requests_get_through_in_time_when_the_network_to_the_database_goes_silent(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connections go silent: a failover that moved the database's address, or a firewall or NAT that forgot
    them. Packets are lost rather than refused, and nothing tells the client: TCP sends again for about 15 minutes
    before it fails the call, and every tap waited that long. The service's connections are closed once what they
    sent stays unacknowledged for `TCP_USER_TIMEOUT`; the hot pool then replaces all its connections, and the ORM's
    finds its connection dead on its check-out ping and reconnects. So each request is answered, late by that
    timeout, and none fails."""
    from sqlalchemy import create_engine, text

    timeout = 2  # seconds; shorter than the service's own, to keep the test short
    monkeypatch.setattr(db, "TCP_USER_TIMEOUT", timeout)
    name = make_url(pg_url).database
    admin = create_engine(make_url(pg_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with served_on(pg_url, tmp_path) as (client, _session, h, url):
            assert client.get("/api/v1/screens", headers=h).status_code == 200  # the ORM's pool holds a connection
            with admin.connect() as conn:  # every connection to the database: both of the app's pools, and the test's
                ports = conn.execute(text(
                    "SELECT client_port, application_name FROM pg_stat_activity "
                    "WHERE datname = :name AND backend_type = 'client backend'"), {"name": name}).all()
            assert [row.application_name for row in ports].count("screening-hot") == 2, ports
            with _network_silent([(5432, row.client_port) for row in ports], lifted_after=6 * timeout + 5):
                # Four tablets at once: the read that meets a silent connection is tried again on a new one, and those
                # queued behind it go on new ones too.
                started = time.monotonic()
                with ThreadPoolExecutor(4) as tablets:
                    reads = list(tablets.map(lambda _: client.get(url, headers=h), range(4)))
                took = time.monotonic() - started
                assert [r.status_code for r in reads] == [200] * 4, [r.text for r in reads]
                assert timeout <= took < timeout + 1.5, f"the reads were answered after {took:.1f} s"
                started = time.monotonic()
                listed = client.get("/api/v1/screens", headers=h)
                took = time.monotonic() - started
                assert listed.status_code == 200, listed.text
                assert timeout <= took < timeout + 1.5, f"the list was answered after {took:.1f} s"
                started = time.monotonic()
                patched = client.patch(url + "/answers", json={"answers": {"phq9_1": 3}}, headers=h)
                assert patched.status_code == 200, patched.text
                assert time.monotonic() - started < 1, "the PATCH met a silent connection"
    finally:
        admin.dispose()


@dataclass
class _Cut:
    """Makes a relay cut the first connection, once armed, whose client sends `marker`: before those bytes reach the
    server ("request"), or after, dropping the server's answer ("answer"). PostgreSQL answers at the Sync that ends a
    round trip (psycopg sends no Flush before it), so by the time an answer is dropped the server has run all the
    round trip held, COMMIT included: the client is left not knowing whether its transaction committed, as when a
    connection fails at that moment."""

    marker: bytes
    at: Literal["request", "answer"] = "answer"
    armed: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self) -> None:
        self.done.clear()
        self.armed = True

    def takes(self, data: bytes) -> bool:
        """Whether this connection, sending `data`, is the one to cut (once per arming)."""
        with self.lock:
            if self.armed and self.marker in data:
                self.armed = False
                return True
            return False


@contextmanager
def _relay(to: tuple[str, int], cut: _Cut | None = None) -> Iterator[int]:
    """A TCP relay on a port of its own to `to`, for as long as the context lasts: its port. Packets to and from that
    port can then be dropped without touching any other connection to the server; or a connection cut (`_Cut`)."""
    import socket

    ends: list[socket.socket] = []

    def close(*pair: socket.socket) -> None:
        for end in pair:  # the other direction's pump sees the end too
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def to_server(client: socket.socket, upstream: socket.socket, doomed: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if cut is not None and not doomed.is_set() and cut.takes(data):
                    doomed.set()
                    if cut.at == "request":
                        cut.done.set()
                        break
                upstream.sendall(data)
        close(client, upstream)

    def to_client(upstream: socket.socket, client: socket.socket, doomed: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                if cut is not None and doomed.is_set():  # cut at the answer: the request cut never had one
                    cut.done.set()
                    break
                client.sendall(data)
        close(upstream, client)

    def serve(listener: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the listener closed
            while True:
                client, _ = listener.accept()
                ends.extend((client, upstream := socket.create_connection(to)))
                doomed = threading.Event()  # this connection is the one to cut
                threading.Thread(target=to_server, args=(client, upstream, doomed), daemon=True).start()
                threading.Thread(target=to_client, args=(upstream, client, doomed), daemon=True).start()

    try:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            threading.Thread(target=serve, args=(listener,), daemon=True).start()
            yield listener.getsockname()[1]
    finally:
        for end in ends:
            end.close()


def test_requests_fail_in_time_while_the_network_to_the_database_stays_silent(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A network cut that lasts: the connections go silent, and no new one can be made. A hot read gives up on its
    connection after `TCP_USER_TIMEOUT` and on a new one after `POOL_WAIT`, a route on the ORM's pool after the
    timeout and `CONNECT_TIMEOUT`: each is answered 503 in seconds, where TCP alone would have held it about
    15 minutes. Once the network is back, the pools reconnect on their own."""
    timeout, wait, connect = 2, 2.0, 1  # seconds; shorter than the service's own, to keep the test short
    monkeypatch.setattr(db, "TCP_USER_TIMEOUT", timeout)
    monkeypatch.setattr(driver, "POOL_WAIT", wait)
    monkeypatch.setattr(db, "CONNECT_TIMEOUT", connect)
    server = make_url(pg_url)
    with _relay((server.host or "127.0.0.1", server.port or 5432)) as port:
        with served_on(server.set(port=port).render_as_string(hide_password=False), tmp_path) as (
                client, _session, h, url):
            assert client.get("/api/v1/screens", headers=h).status_code == 200  # the ORM's pool holds a connection
            with _network_silent([(port, None)], lifted_after=6 * timeout + 5):
                for request, bound in ((lambda: client.get(url, headers=h), timeout + wait),
                                       (lambda: client.get("/api/v1/screens", headers=h), timeout + connect)):
                    started = time.monotonic()
                    r = request()
                    took = time.monotonic() - started
                    assert (r.status_code, r.headers.get("retry-after")) == (503, "1"), r.text
                    assert timeout <= took < bound + 1.5, f"{r.request.url.path} was answered after {took:.1f} s"
            deadline = time.monotonic() + 30
            while client.get(url, headers=h).status_code != 200:
                assert time.monotonic() < deadline, "the hot pool did not reconnect in 30 s"
            assert client.patch(url + "/answers", json={"answers": {"phq9_1": 1}}, headers=h).status_code == 200
            assert client.get("/api/v1/screens", headers=h).status_code == 200


@pytest.mark.parametrize("at", ["answer", "request"])
def test_a_reads_audit_entry_cut_off_at_its_commit_is_written_once(pg_url: str, tmp_path: Path, at: str) -> None:
    """A read's audit entry goes in a batch of appends; a connection lost with the batch sent may have been lost before
    the server had it ("request") or after it had committed it ("answer"), and the client cannot tell which. Sent
    again whole, the batch would record the read twice in the chain; failed, a read the chain records would be
    answered 503. So the pool asks, on a new connection, whether the batch's first entry is in the chain: either way
    the read is answered 200 and recorded once."""
    from sqlalchemy import create_engine

    server = make_url(pg_url)
    cut = _Cut(b"audit_append", cast(Literal["request", "answer"], at))
    with _relay((server.host or "127.0.0.1", server.port or 5432), cut) as port:
        with served_on(server.set(port=port).render_as_string(hide_password=False), tmp_path) as (
                client, _session, h, url):
            sid = url.rsplit("/", 1)[1]
            reads = select(func.count()).where(AuditEntry.record_id == sid, AuditEntry.action == "screen.read")
            admin = create_engine(pg_url)  # not through the relay
            try:
                with admin.connect() as conn:
                    before = conn.execute(reads).scalar_one()
                cut.arm()
                read = client.get(url, headers=h)
                assert cut.done.is_set(), "the relay cut nothing"
                assert read.status_code == 200, read.text
                with admin.connect() as conn:
                    assert conn.execute(reads).scalar_one() == before + 1
                assert client.get(url, headers=h).status_code == 200  # and on
                with admin.connect() as conn:
                    assert conn.execute(reads).scalar_one() == before + 2
            finally:
                admin.dispose()


def test_an_instance_stopped_mid_transaction_holds_the_others_up_for_seconds_only(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Instance A stops in the middle of a write (a paused virtual machine, a stuck process, a network cut its
    database server has not noticed) holding a screen's row and the audit chain's lock, which every write and every
    read's audit entry takes. Instance B's requests, to that screen or another, wait `LOCK_TIMEOUT` at most and are
    answered 503, where they had waited for as long as A stayed stopped. The server ends A's session once it has been
    idle in its transaction for `IDLE_IN_TRANSACTION_TIMEOUT`, rolling A's work back and releasing the locks, and B's
    requests go through."""
    from sqlalchemy.exc import DBAPIError

    from screening.errors import database_unavailable
    from screening.screens.models import Screen

    lock, idle = 1, 6  # seconds; shorter than the service's own, to keep the test short
    monkeypatch.setattr(db, "LOCK_TIMEOUT", lock)
    monkeypatch.setattr(db, "IDLE_IN_TRANSACTION_TIMEOUT", idle)
    with served_on(pg_url, tmp_path) as (client, session, h, url):  # instance B
        other = f"/api/v1/screens/{create_screen(client, h)['id']}"
        screen_id = url.rsplit("/", 1)[1]
        # Instance A: the service's own engine and audit trail, stopped before its commit.
        a_engine = make_engine(Settings(environment="test", database_url=pg_url, data_dir=tmp_path))
        a = Session(a_engine)
        try:
            a.scalars(select(Screen).where(Screen.id == screen_id).with_for_update()).one()
            audit.record(a, SYSTEM, "screen.update", "screen", screen_id)
            audit._write_pending(a)  # as the commit's hook does: the chain's lock is A's until its transaction ends
            stopped = time.monotonic()
            for target in (url, other):
                started = time.monotonic()
                r = client.patch(target + "/answers", json={"answers": {"phq9_1": 1}}, headers=h)
                took = time.monotonic() - started
                assert (r.status_code, r.headers.get("retry-after")) == (503, "1"), (target, r.text)
                assert lock <= took < lock + 1.5, f"PATCH {target} was answered after {took:.1f} s"
            # Four reads at once: those in a batch fail together, not each after a wait of its own.
            started = time.monotonic()
            with ThreadPoolExecutor(4) as tablets:
                reads = list(tablets.map(lambda _: client.get(other, headers=h), range(4)))
            took = time.monotonic() - started
            assert {(r.status_code, r.headers.get("retry-after")) for r in reads} == {(503, "1")}, reads[0].text
            assert lock <= took < 2 * lock + 1.5, f"the reads were answered after {took:.1f} s"
            # The tablet sends its answer again until A's session is ended.
            while (r := client.patch(url + "/answers", json={"answers": {"phq9_1": 1}}, headers=h)).status_code == 503:
                assert time.monotonic() - stopped < idle + 10, "A's session was not ended"
            assert r.status_code == 200, r.text
            assert time.monotonic() - stopped >= idle  # let through by the end of A's session, not before
            with pytest.raises(DBAPIError) as ended:  # A, woken: its request is answered 503
                a.commit()
            assert database_unavailable(ended.value)
        finally:
            a.close()
            a_engine.dispose()
        assert client.patch(other + "/answers", json={"answers": {"phq9_1": 1}}, headers=h).status_code == 200
        session.rollback()
        kept = select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "screen.update",
                                                                   AuditEntry.actor == "system")
        assert session.scalar(kept) == 0  # A's entry was rolled back with the rest of its work


def test_a_request_held_up_in_its_transaction_past_the_idle_limit_is_answered_503(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stopped instance's own side: a request held up inside its transaction past `IDLE_IN_TRANSACTION_TIMEOUT`
    (here by a pause put into the service's own code, on the hot lane and on an ORM route) finds, when it goes on,
    that the server has ended its session. It is answered 503, nothing of it is kept, and the pools carry on."""
    from prometheus_client import REGISTRY

    from screening.screens import service

    monkeypatch.setattr(db, "IDLE_IN_TRANSACTION_TIMEOUT", 1)
    patch = {"answers": {"phq9_1": 2}}
    consent = {"screening": True, "share_with_health": True, "share_with_court": False, "capacity": "has_capacity"}
    with served_on(pg_url, tmp_path) as (client, session, h, url):
        real = {name: getattr(service, name) for name in ("merge_answers", "set_consent")}
        for name, function in real.items():
            def held_up(*args: Any, _function: Any = function, **kwargs: Any) -> Any:
                time.sleep(1.5)  # a stuck process: the hot lane's event loop, or an ORM route's thread
                return _function(*args, **kwargs)
            monkeypatch.setattr(service, name, held_up)
        ended = {"method": "PUT", "route": "/api/v1/screens/{screen_id}/consent", "error": "IdleInTransactionSessionTimeout"}
        before = REGISTRY.get_sample_value("screening_database_unavailable_total", ended) or 0
        for r in (client.patch(url + "/answers", json=patch, headers=h), client.put(url + "/consent", json=consent, headers=h)):
            assert (r.status_code, r.headers.get("retry-after")) == (503, "1"), (r.request.method, r.text)
        # Counted by the driver's error, not SQLAlchemy's wrapping of it (InternalError): what an operator alerts on.
        assert REGISTRY.get_sample_value("screening_database_unavailable_total", ended) == before + 1
        for name, function in real.items():
            monkeypatch.setattr(service, name, function)
        assert client.patch(url + "/answers", json=patch, headers=h).status_code == 200
        assert client.put(url + "/consent", json=consent, headers=h).status_code == 200
        session.rollback()
        events = select(func.count()).where(AnswerEvent.screen_id == url.rsplit("/", 1)[1])
        assert session.scalar(events) == 1  # the acknowledged change alone
