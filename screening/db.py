"""Engine and session factory, built from Settings in the app's lifespan (never at import)."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import URL, DateTime, Engine, MetaData, create_engine, event, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from screening import log_redaction
from screening.config import Settings

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# How long a SQLite connection waits for a lock held by another (sqlite3's busy handler, and the writer gate).
BUSY_TIMEOUT_MS = 15_000
# The write-ahead log's file is cut back to this size when the log starts again (journal_size_limit below).
WAL_SIZE_LIMIT = 64 * 1024 * 1024


def sqlite_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused for a lock another connection holds ("database is locked", "database is busy")."""
    message = str(exc)
    return "locked" in message or "busy" in message


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is switched off so that every transaction starts with
    # BEGIN IMMEDIATE (below): each request writes an audit entry, and taking the write lock up front
    # avoids the deadlock-prone read-then-upgrade of a deferred transaction.
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cur.execute("PRAGMA synchronous=NORMAL")  # durable across application crashes in WAL mode
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # When the write-ahead log starts again after a checkpoint, a file grown past this by a burst of writes is cut
    # back to it (SQLite keeps the file's size otherwise, to write over it).
    cur.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cur.close()


class WriterGate:
    """Queues SQLite writers - this process's threads and event loop, and other processes - on locks that
    hand over at once, instead of in SQLite's busy handler.

    The busy handler retries by sleeping, up to 100 ms a time, so under load a waiting writer sleeps through
    many free moments of the lock while others take it: with two workers the p99 rose to seconds. Here a
    writer takes a thread lock (this process) and then an exclusive flock on a file beside the database
    (every process), and only then BEGIN IMMEDIATE, which then finds SQLite's lock free. Waiting is bounded
    like busy_timeout; past it, the transaction falls back to SQLite's own waiting.
    """

    def __init__(self, timeout: float, lock_path: str | None) -> None:
        self._lock = threading.Lock()
        self.timeout = timeout
        # Opened per process (engines are made in the lifespan, after any fork): an flock belongs to the open
        # file, so a descriptor inherited across a fork would let both processes in at once. None first, for
        # __del__ should the open fail (a database whose folder is missing).
        self._fd: int | None = None
        self._fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600) if lock_path else None

    def try_acquire(self) -> bool:
        """Both locks, or neither, without waiting (the event loop's fast path)."""
        if not self._lock.acquire(blocking=False):
            return False
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._lock.release()
                return False
        return True

    def acquire(self) -> bool:
        """Both locks, waiting up to `timeout` seconds (in a thread): False, holding neither, past it."""
        deadline = time.monotonic() + self.timeout
        if not self._lock.acquire(timeout=self.timeout):
            return False
        if self._fd is None:
            return True
        pause = 0.0001
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._lock.release()
                    return False
                time.sleep(pause)
                pause = min(pause * 2, 0.001)  # a millisecond at most: the holder commits in well under that

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()

    def __del__(self) -> None:  # with its engine (an engine stays usable after dispose(), so not then)
        if self._fd is not None:
            os.close(self._fd)

    def begin(self, conn: Any) -> None:
        conn.info["writer_gate"] = self.acquire()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self.end(conn)
            raise

    def end(self, conn: Any) -> None:
        if conn.info.pop("writer_gate", False):
            self.release()


_GATES: weakref.WeakKeyDictionary[Engine, WriterGate] = weakref.WeakKeyDictionary()


def writer_gate(engine: Engine) -> WriterGate:
    """The writer gate of a SQLite engine made by `make_engine`."""
    return _GATES[engine]


def make_engine(settings: Settings) -> Engine:
    log_redaction.install()
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        wait = BUSY_TIMEOUT_MS / 1000
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": wait}, hide_parameters=True)
        database = engine.url.database
        in_memory = not database or database == ":memory:" or database.startswith("file::memory:")
        gate = _GATES[engine] = WriterGate(timeout=wait, lock_path=None if in_memory else f"{database}-writer.lock")
        event.listen(engine, "connect", sqlite_pragmas)
        event.listen(engine, "begin", gate.begin)
        event.listen(engine, "commit", gate.end)
        event.listen(engine, "rollback", gate.end)
        return engine
    # hide_parameters: bound values (custody records, dates of birth) never reach logs or error messages.
    return create_engine(url, pool_size=settings.db_pool_size, max_overflow=settings.db_pool_size, pool_pre_ping=True,
                         pool_timeout=POOL_WAIT, hide_parameters=True, connect_args=connect_args(make_url(url)))


# A PostgreSQL connection's waits, bounded for both pools (`connect_args`); a setting the URL gives itself is kept.
# - CONNECT_TIMEOUT: seconds a new connection may take to be made. libpq's own default is to wait for ever: a database
#   host cut off by the network, or one that took the connection and never answered, held a request (and a pool's
#   reconnecting worker) for as long as the operating system's TCP timeouts allowed, or for ever.
# - TCP_USER_TIMEOUT: seconds that what a connection sent may stay unacknowledged before the kernel closes it. When the
#   network to the database goes silent (a failover that moved its address, a host that died, a firewall or NAT that
#   forgot the connection) packets are lost rather than refused, and nothing tells the client: Linux sends them again
#   for about 15 minutes (tcp_retries2) before failing the call. Measured here with the packets of one connection
#   dropped (scratch; commit 1728f96's message gives it): a query was still waiting after 30 s, and failed in 3.4 s
#   with a 3 s timeout. A healthy network acknowledges in milliseconds, and a slow query is not cut
#   short: its bytes were acknowledged when it was sent.
# - keepalives: a connection quiet for KEEPALIVE_IDLE seconds is probed every KEEPALIVE_INTERVAL seconds, so one that
#   died while idle in a pool is closed there, and a firewall or NAT keeps its entry for it. With TCP_USER_TIMEOUT set,
#   Linux closes it once a probe has gone unanswered that long.
# - LOCK_TIMEOUT and IDLE_IN_TRANSACTION_TIMEOUT, the server's own limits for the session (through libpq's options).
#   Every write appends to the audit chain, whose lock (pg_advisory_xact_lock, in audit_append) it holds until its
#   transaction ends, and a write to a screen holds the screen's row. An instance that stopped mid-transaction (a
#   paused virtual machine, a stuck process, a network cut its server has not noticed: the server's own keepalives
#   wait two hours) held them for as long, and every write of every instance queued behind it. Now a statement waits
#   at most LOCK_TIMEOUT seconds for a lock, then fails (503: sent again, it goes through once the lock is free), and
#   the server ends a session left idle in its transaction for IDLE_IN_TRANSACTION_TIMEOUT seconds, rolling it back
#   and releasing its locks. No transaction of the service waits on the service for more than a fraction of a second.
#   The migrations' transaction turns both off for itself (`screening.migrate.upgrade`): it waits for another
#   instance's migrations to finish, and a migration may compute between its statements.
# - POOL_WAIT: seconds a request waits for a connection of either pool before it is answered 503 (psycopg_pool's
#   `timeout` for the hot routes, SQLAlchemy's `pool_timeout` for the others). While the database is away every
#   connection of the hot pool is gone and its workers retry in the background; the default of 30 s held each tap that
#   long, and a read batch that failed waited again for each of its reads: a minute and more per request, measured
#   here with the database refusing connections. A failover over within this wait costs a request nothing more. The
#   ORM's pool (db_pool_size and as many again) can run dry when slow queries hold its connections: the routes that take
#   a session run in a thread pool of 40.
CONNECT_TIMEOUT = 5
TCP_USER_TIMEOUT = 5
POOL_WAIT = 5.0
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 10, 5, 3
LOCK_TIMEOUT = 5
IDLE_IN_TRANSACTION_TIMEOUT = 15


def connect_args(url: URL) -> dict[str, Any]:
    """The connection arguments that bound a PostgreSQL connection's waits (above), for both pools. A setting the URL
    gives itself is kept; the server's limits go before any `options` of the URL's, which thus win."""
    args: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT, "tcp_user_timeout": TCP_USER_TIMEOUT * 1000, "keepalives": 1,
        "keepalives_idle": KEEPALIVE_IDLE, "keepalives_interval": KEEPALIVE_INTERVAL,
        "keepalives_count": KEEPALIVE_COUNT}
    args = {name: value for name, value in args.items() if name not in url.query}
    given = url.query.get("options", ())
    args["options"] = " ".join([f"-c lock_timeout={LOCK_TIMEOUT * 1000}",
                                f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT * 1000}",
                                *([given] if isinstance(given, str) else given)])
    return args


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Commit on success, roll back on any exception: services flush, never commit."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
