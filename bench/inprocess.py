"""Costs measured inside one process, without HTTP: the model per screen, a request's unit of work."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from screening.auth.dependencies import Hot
    from screening.config import Settings
    from screening.driver import HotDatabase

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
ANSWERS = (
    {f"phq9_{i}": 1 for i in range(1, 10)}
    | {f"gad7_{i}": 1 for i in range(1, 8)}
    | {f"bjmhs_{i}": i in (1, 3) for i in range(1, 9)}
    | {f"audit_{i}": 1 for i in range(1, 11)}
    | {f"dast10_{i}": i in (1, 2) for i in range(1, 11)}
    | {"risk_past_attempt": True, "ldc_reading_help": True, "social_housing": True}
)


def _run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` on uvloop's event loop, as `screening serve` (uvicorn) runs the service: the cost of an await
    that waits on a socket depends on the loop."""
    import asyncio

    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


@contextmanager
def _seeded(name: str, url: str | None = None) -> Iterator[tuple[Settings, Engine, int, str]]:
    """A migrated database with one nurse: (settings, engine, her id, a token). SQLite in a temporary directory,
    or the empty database at `url`."""
    from screening import migrate
    from screening.auth.models import Role
    from screening.auth.security import issue_token
    from screening.auth.service import create_user
    from screening.config import Settings
    from screening.db import make_engine, make_session_factory, unit_of_work

    with tempfile.TemporaryDirectory(prefix=f"screening-bench-{name}-") as tmp:
        settings = Settings(database_url=url or f"sqlite:///{tmp}/{name}.db", data_dir=Path(tmp))
        engine = make_engine(settings)
        try:
            migrate.upgrade(engine)
            with unit_of_work(make_session_factory(engine)) as session:
                user_id = create_user(session, f"{name}-nurse", f"{name} passphrase 0123456789", Role.nurse,
                                      custody_suites=["Bench"]).id
            secret = settings.secret_key.get_secret_value()
            yield settings, engine, user_id, issue_token(secret, user_id, Role.nurse, 0, 3600)
        finally:
            engine.dispose()


@contextmanager
def _service_logging() -> Iterator[None]:
    """Logging as the service configures it (JSON lines, lean records), written to /dev/null; reset afterwards."""
    import logging.config

    from screening.ops.logging import lean_records, log_config

    saved, devnull = sys.stderr, open(os.devnull, "w")
    try:
        sys.stderr = devnull  # the handler's stream is resolved ("ext://sys.stderr") when configured
        logging.config.dictConfig(log_config("INFO", True))
        lean_records()
        yield
    finally:
        sys.stderr = saved
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
        devnull.close()


def measure_all(notes: list[str]) -> list[tuple[str, str, str, str]]:
    """(what, figure, goal, met) rows for the results table."""
    try:
        from screening.model.service import load_model
    except ImportError:
        notes.append("Model inference and explanation: not measured (the model is not in this build).")
        return []
    model_dir = next((d for d in (ROOT / "models").glob("*") if (d / "manifest.json").exists()), None)
    if model_dir is None:
        notes.append("Model inference and explanation: not measured (no model artifact under models/).")
        return []
    t0 = time.perf_counter()
    bundle = load_model(model_dir)
    load_s = time.perf_counter() - t0
    for _ in range(50):  # warm-up: ONNX Runtime allocates on the first runs
        bundle.evaluate(ANSWERS, age=35, sex="male")
    samples = []
    for _ in range(500):
        t0 = time.perf_counter()
        # evaluate(), not assess(): assess() memoises, and this row is the cost of a screen state not seen before.
        result = bundle.evaluate(ANSWERS, age=35, sex="male")
        samples.append(time.perf_counter() - t0)
    samples.sort()
    p50, p99 = statistics.median(samples) * 1000, samples[int(len(samples) * 0.99)] * 1000
    hit = _cpu_per_call(lambda: bundle.assess(ANSWERS, age=35, sex="male"), n=2000)
    return [
        (f"model load and verification ({model_dir.name}, {bundle.version})", f"{load_s * 1000:.0f} ms", "", ""),
        (f"model inference + exact explanation, {len(result)} domains, per new screen state (p50 / p99 of 500)",
         f"{p50:.2f} / {p99:.2f} ms", "", ""),
        ("model assessment of a screen state seen before (the memo: ModelBundle.assess; least of 5 runs)",
         f"{hit * 1e6:.0f} µs CPU", "", ""),
    ]


def _cpu_per_call(fn: Callable[[], object], n: int = 200, runs: int = 5) -> float:
    """Least CPU seconds per call over `runs` runs of `n` calls: this VM's speed drifts, the floor less so."""
    for _ in range(20):
        fn()
    best = float("inf")
    for _ in range(runs):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - t0) / n)
    return best


async def _cpu_per_await(fn: Callable[[], Awaitable[object]], n: int = 200, runs: int = 5, warm: int = 20,
                         clock: Callable[[], float] = time.process_time) -> float:
    """`_cpu_per_call` for a coroutine function, awaited on the running loop; `clock` in seconds, the process's
    CPU time unless another is given."""
    for _ in range(warm):
        await fn()
    best = float("inf")
    for _ in range(runs):
        t0 = clock()
        for _ in range(n):
            await fn()
        best = min(best, (clock() - t0) / n)
    return best


class _Timed:
    """CPU time of this thread spent inside sqlite3's calls, and how many statements ran."""

    def __init__(self) -> None:
        self.cpu_ns = self.calls = self.regions = 0
        # What reading the clock adds to each timed region (about half a microsecond here), taken off the total.
        clock, n = time.thread_time_ns, 20_000
        self.overhead_ns = min(self._empty(clock, n) for _ in range(5)) / n

    @staticmethod
    def _empty(clock: Callable[[], int], n: int) -> int:
        total = 0
        for _ in range(n):
            t0 = clock()
            total += clock() - t0
        return total

    @property
    def net_ns(self) -> float:
        return self.cpu_ns - self.regions * self.overhead_ns


@contextmanager
def _timed_sqlite() -> Iterator[_Timed]:
    """While open, `sqlite3.connect` makes connections whose statements (execute, executemany, fetch) add their
    CPU time to the `_Timed` given: the thread's own, so a checkpoint in another thread does not count."""
    import sqlite3
    from functools import partial

    timed = _Timed()
    clock = time.thread_time_ns

    def run(call: Callable[..., Any], *args: Any, statement: bool = False) -> Any:
        t0 = clock()
        try:
            return call(*args)
        finally:
            timed.cpu_ns += clock() - t0
            timed.regions += 1
            timed.calls += statement

    class Cursor(sqlite3.Cursor):
        def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
            return run(super().execute, sql, parameters, statement=True)

        def executemany(self, sql: str, seq: Any, /) -> sqlite3.Cursor:
            return run(super().executemany, sql, seq, statement=True)

        def fetchall(self) -> list[Any]:
            return run(super().fetchall)

        def fetchone(self) -> Any:
            return run(super().fetchone)

    class Connection(sqlite3.Connection):
        def cursor(self, factory: Any = Cursor) -> Any:
            return super().cursor(factory)

        def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
            return self.cursor().execute(sql, parameters)

    connect = sqlite3.connect
    sqlite3.connect = partial(connect, factory=Connection)
    try:
        yield timed
    finally:
        sqlite3.connect = connect


class _Answered:
    """A database with one nurse and one screen she has opened, consented and answered in full, and what the
    service's routes need to work on it in-process."""

    def __init__(self, settings: Settings, engine: Engine, token: str) -> None:
        import anyio

        from screening.auth.dependencies import Work, token_claims
        from screening.auth.policy import Permission
        from screening.db import make_session_factory
        from screening.instruments.registry import load_registry
        from screening.model.promotion import load_active
        from screening.routes.rulebook import load_rulebook

        self.engine = engine
        self.factory = make_session_factory(engine)
        self.registry = load_registry(settings.instruments_dir)
        self.book = load_rulebook(self.registry, settings.routes_dir)
        self.bundle, _ = load_active(settings, self.factory)
        self.secret = settings.secret_key.get_secret_value()
        self.claims = token_claims(self.secret, token)
        self.work = Work(self.factory, self.claims, Permission.screens_write, "127.0.0.1", anyio.CapacityLimiter(1))
        self.sid: str = self.work.run(self._open_screen)
        self._turn = iter(range(10**9))

    def _open_screen(self, session, user):  # type: ignore[no-untyped-def]
        from screening.screens import service as screens
        from screening.screens.schemas import ConsentPut, ScreenCreate

        screen, _ = screens.create_screen(session, user, ScreenCreate(
            custody_record="UOW/1", date_of_birth="1990-01-01", sex="female"), None, self.secret)
        screens.set_consent(session, user, screen, ConsentPut(
            screening=True, share_with_health=True, share_with_court=True, capacity="has_capacity"))
        screens.patch_answers(session, user, self.registry, screen, ANSWERS)
        return screen.id

    def hot_database(self) -> HotDatabase:
        """The hot routes' database layer as a worker makes it, with one connection."""
        from screening.audit import service as audit
        from screening.driver import hot_database

        return hot_database(self.engine, audit.write_hot, pool_size=1)

    @asynccontextmanager
    async def serving(self, db: HotDatabase | None = None) -> AsyncIterator[Hot]:
        """`db` (by default a new `hot_database`) opened, and a nurse's way to it as a hot route has it."""
        from screening.auth.dependencies import Hot
        from screening.auth.policy import Permission

        db = db or self.hot_database()
        await db.open()
        try:
            yield Hot(db, self.claims, Permission.screens_write, "127.0.0.1", self.registry, self.bundle, self.book)
        finally:
            await db.close()

    def patch(self, hot: Hot) -> Callable[[], Awaitable[object]]:
        """An answer PATCH as the benchmark's load sends it: one answer, changed every time."""
        from screening.screens import service as screens

        return lambda: screens.patch_answers_hot(hot, self.sid, {"phq9_1": next(self._turn) % 4}, None)


def units_of_work(notes: list[str]) -> list[tuple[str, str, str, str]]:
    """A request's work on SQLite without HTTP, from the user check to the commit: where the time goes
    (README, Benchmark). The tablet's hot routes at driver level, the recommendations through the ORM."""
    import sqlite3

    from sqlalchemy import select

    from screening.auth.models import User
    from screening.db import unit_of_work
    from screening.model import assessments
    from screening.routes import service as routes
    from screening.routes.dependencies import model_needs
    from screening.screens import service as screens
    from screening.screens.dependencies import load_screen

    with _seeded("uow") as (settings, engine, user_id, token):
        answered = _Answered(settings, engine, token)
        factory = answered.factory
        sid, registry, bundle, book = answered.sid, answered.registry, answered.bundle, answered.book
        work, serving, patch = answered.work, answered.serving, answered.patch

        def recommend(session, user):  # type: ignore[no-untyped-def]
            screen = load_screen(session, sid, user)
            needs = model_needs(bundle, session, registry, screen)
            return [r.model_dump_json() for r in routes.recommendations(session, registry, book, user, screen, needs)]

        async def hot_rows() -> list[tuple[str, str, str, str]]:
            async with serving() as hot:
                units = (
                    ("screen read", lambda: screens.read_screen_hot(hot, sid)),
                    ("answer PATCH", patch(hot)),
                    ("assessment, unchanged screen", lambda: assessments.assess_screen_hot(hot, sid)),
                )
                rows = []
                for name, unit in units:
                    best = await _cpu_per_await(unit)
                    rows.append((f"hot route's work in-process, SQLite, {name} (user check to commit, no HTTP; "
                                 "least of 5 runs)", f"{best * 1000:.2f} ms CPU", "", ""))
                return rows

        async def patch_statements() -> tuple[str, str, str, str]:
            """The answer PATCH's database work alone: the CPU its statements take inside sqlite3."""
            with _timed_sqlite() as timed:
                db = answered.hot_database()
            n, runs, warm = 200, 5, 20
            async with serving(db) as hot:
                best = await _cpu_per_await(patch(hot), n, runs, warm, clock=lambda: timed.net_ns / 1e9)
            statements = timed.calls / (warm + runs * n)  # on average: now and then a wait for the lock adds two
            return (f"answer PATCH's {statements:.0f} statements inside sqlite3 alone, one PATCH per transaction "
                    "(BEGIN IMMEDIATE to COMMIT, as the driver runs them; the CPU of the calls into sqlite3; least of "
                    "5 runs)", f"{best * 1e6:.0f} µs CPU", "", "")

        rows = _run(hot_rows())
        rows.append(_run(patch_statements()))
        rows.append(("unit of work in-process, SQLite, recommendations through the ORM (user check to commit, "
                     "no HTTP; least of 5 runs)", f"{_cpu_per_call(lambda: work.run(recommend)) * 1000:.2f} ms CPU",
                     "", ""))
        one_select = select(User.__table__.c.username).where(User.__table__.c.id == user_id)

        def core() -> None:
            with engine.connect() as conn:
                conn.execute(one_select).first()
                conn.commit()

        def raw() -> None:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT username FROM users WHERE id = ?", (user_id,)).first()
                conn.commit()

        def orm() -> None:
            with unit_of_work(factory) as session:
                session.execute(one_select).first()

        driver = sqlite3.connect(engine.url.database or "", isolation_level=None)

        def dbapi() -> None:
            driver.execute("BEGIN IMMEDIATE")
            driver.execute("SELECT username FROM users WHERE id = ?", (user_id,)).fetchone()
            driver.execute("COMMIT")

        for name, f in (("through an ORM session", orm), ("through SQLAlchemy Core", core),
                        ("through SQLAlchemy, raw SQL (exec_driver_sql)", raw),
                        ("on sqlite3 itself, as screening.driver runs it", dbapi)):
            rows.append((f"one SQLite transaction with one SELECT, {name} (least of 5 runs)",
                         f"{_cpu_per_call(f, n=2000) * 1e6:.0f} µs CPU", "", ""))
        driver.close()
        return rows


def request_log_line(notes: list[str]) -> list[tuple[str, str, str, str]]:
    """What the JSON request log line costs, as the service configures logging, written to /dev/null: made by
    `RequestLog` as the service writes it, and through the logging module (`logger.info`, JsonFormatter)."""
    import logging

    from screening.ops.logging import RequestLog

    with _service_logging():
        log = logging.getLogger("screening.request")
        extra = {"request_id": "0" * 32, "method": "GET", "route": "/api/v1/screens/{screen_id}", "status": 200,
                 "duration_ms": 1.23, "worker_pid": os.getpid()}
        write = RequestLog(log)
        ours = _cpu_per_call(lambda: write("0" * 32, "GET", "/api/v1/screens/{screen_id}", 200, 1.23, os.getpid()),
                             n=5000)
        logged = _cpu_per_call(lambda: log.info("request", extra=extra), n=5000)
    return [("one JSON request log line, as the service writes every request's (RequestLog, to /dev/null; "
             "least of 5 runs)", f"{ours * 1e6:.1f} µs CPU", "", ""),
            ("the same line through the logging module (logger.info, JsonFormatter; to /dev/null; least of 5 runs)",
             f"{logged * 1e6:.1f} µs CPU", "", "")]


def hot_lane(notes: list[str]) -> list[tuple[str, str, str, str]]:
    """The hot routes through the whole ASGI app in one process (no HTTP server), with the hot lane
    (screening.fastlane) and with it taken out, so FastAPI's own matching and dependency solving serve the
    same route; and the minimal endpoint the same way. The request log line is written, to /dev/null."""
    import itertools
    import json

    import httpx

    from bench.minimal_app import app as minimal_app
    from screening.app import create_app
    from screening.fastlane import HotLane

    async def call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> int:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
                 "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {}}
        sent = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    async def cpu(fn: Callable[[], Awaitable[int]], runs: int = 5) -> float:
        if await fn() != 200:
            raise RuntimeError("the request failed")
        return await _cpu_per_await(fn, n=1000, runs=runs, warm=50)

    async def measure(settings: Settings, token: str) -> list[tuple[str, str, str, str]]:
        app = create_app(settings)
        auth = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())]
        json_headers = [*auth, (b"content-type", b"application/json")]
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                         headers={"authorization": f"Bearer {token}"}) as c:
                sid = (await c.post("/api/v1/screens", json={"custody_record": "LANE/1", "date_of_birth": "1990-01-01",
                                                             "sex": "female"})).json()["id"]
                await c.put(f"/api/v1/screens/{sid}/consent", json={
                    "screening": True, "share_with_health": True, "share_with_court": True, "capacity": "has_capacity"})
                await c.patch(f"/api/v1/screens/{sid}/answers", json={"answers": dict(ANSWERS)})
            turn = itertools.count()
            routes = (
                ("GET /screens/{id}", lambda: call(app, "GET", f"/api/v1/screens/{sid}", auth)),
                ("GET /screens/{id}/assessment", lambda: call(app, "GET", f"/api/v1/screens/{sid}/assessment", auth)),
                ("PATCH /screens/{id}/answers", lambda: call(
                    app, "PATCH", f"/api/v1/screens/{sid}/answers", json_headers,
                    json.dumps({"answers": {"phq9_1": next(turn) % 4}}).encode())),
            )
            lane = app.router.routes[0]
            if not isinstance(lane, HotLane):
                raise RuntimeError("the app has no hot lane first in its routes")
            rows = []
            for name, fn in routes:
                # The two in turns, the least of five runs each: this machine's speed drifts within seconds, and
                # five runs of one and then five of the other once put a slow spell on one side only.
                with_lane = without = float("inf")
                for _ in range(5):
                    with_lane = min(with_lane, await cpu(fn, runs=1))
                    app.router.routes.remove(lane)
                    try:
                        without = min(without, await cpu(fn, runs=1))
                    finally:
                        app.router.routes.insert(0, lane)
                rows.append((f"{name} through the whole app in-process, SQLite (no HTTP server; least of 5 runs): "
                             "with the hot lane / through FastAPI's own matching and dependency solving",
                             f"{with_lane * 1e6:.0f} / {without * 1e6:.0f} µs CPU", "", ""))
        fifty = json.dumps({f"f{i}": i for i in range(50)}).encode()
        minimal = await cpu(lambda: call(minimal_app, "POST", "/minimal",
                                         [(b"content-type", b"application/json")], fifty))
        rows.insert(0, ("minimal endpoint through its app in-process (no HTTP server; least of 5 runs)",
                        f"{minimal * 1e6:.0f} µs CPU", "", ""))
        return rows

    with _seeded("lane") as (settings, _engine, _user_id, token), _service_logging():
        return _run(measure(settings, token))


def postgres_round_trip(notes: list[str], url: str) -> list[tuple[str, str, str, str]]:
    """What one round trip to PostgreSQL costs the client in CPU, through psycopg's asyncio connection as the hot
    routes use it: the PostgreSQL rows of the table cost more than the SQLite rows by about this per round trip."""

    import psycopg

    async def measure() -> list[tuple[str, str, str, str]]:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        try:
            async def plain() -> None:
                await (await conn.execute("SELECT 1")).fetchall()

            async def pipelined() -> None:
                cur = conn.cursor()
                async with conn.pipeline():
                    await cur.execute("BEGIN")
                    await cur.execute("SELECT 1")
                    await cur.execute("COMMIT")

            rows = []
            for name, fn in (("one statement", plain), ("BEGIN, one statement and COMMIT in a pipeline", pipelined)):
                best = await _cpu_per_await(fn, n=1000, warm=100)
                rows.append((f"one PostgreSQL round trip, {name}, through psycopg's asyncio connection on uvloop (client CPU; "
                             "least of 5 runs)", f"{best * 1e6:.0f} µs CPU", "", ""))
            return rows
        finally:
            await conn.close()

    try:
        return _run(measure())
    except psycopg.OperationalError as exc:
        notes.append(f"PostgreSQL round trip: not measured ({type(exc).__name__}).")
        return []


def postgres_patch(notes: list[str], url: str, server_cpu: Callable[[], float], *,
                   n: int = 1000) -> list[tuple[str, str, str, str]]:
    """What an answer PATCH costs PostgreSQL itself: the CPU time of the server's processes (`server_cpu`, in
    seconds) per PATCH, sent as a worker sends it, one after another on one connection with nothing else running.
    Beside it, the client's CPU for the same PATCH, and the server's for the least transaction that holds a
    screen's row: BEGIN, the row lock and COMMIT (a PATCH's first and last statements). `url`: an empty database.
    The server's CPU is counted in 10 ms ticks: `n` PATCHes a run, 1,000 by default, take some 50 of them."""
    import psycopg

    async def measure(answered: _Answered) -> list[tuple[str, str, str, str]]:
        runs, warm = 5, 50
        async with answered.serving() as hot:
            patch = answered.patch(hot)
            server = await _cpu_per_await(patch, n, runs, warm, clock=server_cpu)
            client = await _cpu_per_await(patch, n=200)
        conn = await psycopg.AsyncConnection.connect(url.replace("+psycopg", ""), autocommit=True)
        try:
            async def lock_alone() -> None:
                cur = conn.cursor()
                async with conn.pipeline():
                    await cur.execute("BEGIN")
                    await cur.execute("SELECT id FROM screens WHERE id = %s FOR UPDATE", (answered.sid,))
                    await cur.execute("COMMIT")

            floor = await _cpu_per_await(lock_alone, n, runs, warm, clock=server_cpu)
        finally:
            await conn.close()
        return [
            ("answer PATCH's statements inside PostgreSQL alone, one PATCH at a time on one connection (the CPU of "
             "this machine's PostgreSQL processes; least of 5 runs)", f"{server * 1000:.2f} ms CPU", "", ""),
            ("of which the least a transaction holding a screen's row costs PostgreSQL: BEGIN, the row lock "
             "(FOR UPDATE) and COMMIT, in one pipeline (least of 5 runs)", f"{floor * 1000:.2f} ms CPU", "", ""),
            ("hot route's work in-process, PostgreSQL, answer PATCH (the client's CPU, user check to commit, no "
             "HTTP; least of 5 runs)", f"{client * 1000:.2f} ms CPU", "", ""),
        ]

    try:
        with _seeded("pg", url) as (settings, engine, _user_id, token):
            return _run(measure(_Answered(settings, engine, token)))
    except psycopg.OperationalError as exc:
        notes.append(f"A PATCH inside PostgreSQL: not measured ({type(exc).__name__}).")
        return []
