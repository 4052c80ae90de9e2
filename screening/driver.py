"""Database work at driver level, for the routes a tablet calls on every tap.

A nurse's tablet reads a screen, patches one answer, reads the assessment: each is a handful of small
statements. Measured on the 2-core machine the benchmark runs on (`python -m bench`, rows "one
SQLite transaction ..."), a statement on sqlite3 itself costs a few microseconds, through SQLAlchemy
Core about ten times that, and an ORM Session adds about 70 µs per unit of work; on the hot routes
that overhead was most of a request. So those routes run their statements here, on the DBAPI
connection, while everything else keeps the ORM.

What is kept from SQLAlchemy: statements are built with Core from the same table metadata and
compiled once per dialect at start-up, and values go through the column types' own bind and result
processors, so a row written here is exactly what the ORM writes and reads.

Transactions come in three shapes, which both databases share:

* `read_one` / `read_all`: one statement, its own snapshot, no lock (on PostgreSQL the reads of the moment
  share one round trip).
* `write()`: a write transaction. `fetch` runs a statement now (a locked read-modify-write) and `add`
  queues statements; at commit the `before_commit` hook (the audit module's `write_hot`) chains the
  audit entries queued on the transaction, so they commit with the change or not at all. On PostgreSQL
  everything after the reads goes in one round trip; on SQLite the units of work of the moment share
  one transaction, each in a savepoint (group commit).
* `append()`: a write that only adds rows - a read's audit entry, an assessment record - committed with
  the other appends of the moment, in one round trip on PostgreSQL.

Both write shapes return only once their transaction has committed: nothing is acknowledged before it is
durable.

SQLite runs on the event loop: a statement costs microseconds, and a thread-pool hop cost 0.28 ms of
CPU per request under load (the GIL hand-offs between the loop and the thread). The write lock
(`screening.db.WriterGate`) is tried without waiting; when another process or thread holds it, the
wait happens in a thread, so the loop never sleeps in SQLite's busy handler. PostgreSQL runs on
psycopg's asyncio connections, so a slow network never blocks the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast

import anyio.to_thread
from sqlalchemy import ARRAY, Engine, Insert, Select, Table, bindparam, column, func, insert, select, true
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

from screening.db import (
    BUSY_TIMEOUT_MS,
    POOL_WAIT,
    WAL_SIZE_LIMIT,
    connect_args,
    sqlite_busy,
    sqlite_pragmas,
    writer_gate,
)

if TYPE_CHECKING:
    from psycopg import AsyncConnection, AsyncCursor
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("screening.driver")

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Compiled:
    """A Core statement compiled for one dialect, with its columns' bind and result processors."""

    sql: str
    # Parameter name -> processor, for the parameters whose type converts values (dates, JSON, booleans).
    binds: tuple[tuple[str, Callable[[Any], Any]], ...]
    # One per result column; None where the driver's value is already the Python value.
    results: tuple[Callable[[Any], Any] | None, ...]
    # Values fixed in the statement itself (a LIMIT, a literal comparison).
    fixed: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, stmt: ClauseElement, dialect: Dialect) -> Compiled:
        compiled = cast(SQLCompiler, stmt.compile(dialect=dialect))
        binds = []
        for name, bind in compiled.binds.items():
            proc = bind.type._cached_bind_processor(dialect)
            if proc is not None:
                binds.append((name, proc))
        results = tuple(
            col.type._cached_result_processor(dialect, None) for col in getattr(compiled, "_result_columns", ())
        )
        fixed = tuple((k, v) for k, v in compiled.params.items() if v is not None)
        return cls(compiled.string, tuple(binds), results, fixed)

    def params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(self.fixed)
        out.update(values)
        if not self.binds:
            return out
        for name, proc in self.binds:
            value = out.get(name)
            if value is not None:
                out[name] = proc(value)
        return out

    def row(self, raw: Sequence[Any]) -> Row:
        return tuple(v if p is None or v is None else p(v) for p, v in zip(self.results, raw, strict=True))


def insert_rows(table: Table, columns: Sequence[str]) -> Insert:
    """INSERT of the named columns, each a bound parameter of the column's own type (compiled once,
    run with one or many rows). The columns are named because a compiled statement cannot leave out a
    column per row, as `session.execute(insert(table), rows)` does: an autoincrement key must not be sent."""
    return insert(table).values({name: bindparam(name, type_=table.c[name].type) for name in columns})


# A Core statement, or a function of the dialect's name that builds one (for the few hot statements that
# differ between dialects, such as JSON aggregation).
Stmt = ClauseElement | Callable[[str], ClauseElement]


@dataclass(frozen=True, eq=False)  # a statement's key in `Statements`, by identity like the others
class Keyed:
    """A read of at most one row per parameter set, whose only parameters are its keys (the user's id and a
    screen's, say), which PostgreSQL can answer for all the reads of the moment in one statement.

    `build(dialect, **keys)` makes the statement from an expression per key. Called with the dialect's name, a
    `Keyed` is a `Stmt` like any other: the keys are bind parameters. `many` puts in their place the columns of
    an unnest of one array per key, with the read under a LATERAL join, so one statement answers every parameter
    set, each row led by its set's ordinal: psycopg and the server pay their per-statement costs once for all
    of them. Measured here (scratch harness, batches of 8 reads of the assessment's load, generic plans),
    against the same reads as one executemany in a pipeline: PostgreSQL's CPU per read 117-141 us -> 62-95 us,
    the client's 51-53 -> 30-31 us."""

    build: Callable[..., Select[Any]]
    keys: tuple[tuple[str, TypeEngine[Any]], ...]

    def __call__(self, dialect: str) -> Select[Any]:
        return self.build(dialect, **{name: bindparam(name, type_=type_) for name, type_ in self.keys})

    def many(self, dialect: str) -> Select[Any]:
        sets = (
            func.unnest(*(bindparam(name, type_=ARRAY(type_)) for name, type_ in self.keys))
            .table_valued(*(column(name, type_) for name, type_ in self.keys), with_ordinality="keyed_ordinal")
            .render_derived(name="keyed")
        )
        # Correlated by name: a read with no table of its own would otherwise get the unnest again, inside.
        one = self.build(dialect, **{name: sets.c[name] for name, _ in self.keys}).correlate(sets).lateral("one")
        return select(sets.c.keyed_ordinal, one).select_from(sets.join(one, true()))


class Statements:
    """Statements compiled once per dialect, on first use: `statements[stmt]`."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.name = dialect.name
        # Keyed by the statement object itself (statements compare by identity; only column expressions
        # overload ==), which lives as long as the module that built it; a `Keyed` read's `many` is a bound method,
        # equal to every other taken from the same read.
        self._compiled: dict[Stmt, Compiled] = {}

    def __getitem__(self, stmt: Stmt) -> Compiled:
        compiled = self._compiled.get(stmt)
        if compiled is None:
            built = stmt if isinstance(stmt, ClauseElement) else stmt(self.name)
            compiled = self._compiled[stmt] = Compiled.of(built, self.dialect)
        return compiled


BeforeCommit = Callable[["WriteTx"], Awaitable[None]]
# Statements waiting to run, each with its parameter sets (several: an executemany).
Queued = list[tuple[Compiled, list[dict[str, Any]]]]
# Statements run in one transaction of their own, the last returning one row whose first column says whether a
# transaction that was cut off at its commit had committed (`WriteTx.witness`).
Witness = Sequence[tuple["Stmt", Mapping[str, Any]]]


def _rows(stmt: Compiled, rows: Sequence[Sequence[Any]], raw: bool) -> list[Row]:
    if raw:
        return [tuple(r) for r in rows]
    return [stmt.row(r) for r in rows]


class Memo:
    """A bounded memo for pure functions of what a statement returned: keyed by the raw row itself, so a
    hit is always right, with nothing to invalidate. Oldest entries go first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: dict[Any, Any] = {}

    def get(self, key: Any) -> Any:
        return self._entries.get(key)

    def put(self, key: Any, value: Any) -> Any:
        entries = self._entries
        if len(entries) >= self.size:
            del entries[next(iter(entries))]
        entries[key] = value
        return value


class WriteTx(ABC):
    """A write transaction. `add` queues statements, run in order before the next `fetch` or at commit;
    `info` carries what hooks queue (the audit module keeps its pending entries there)."""

    def __init__(self, statements: Statements, shared: dict[str, Any] | None = None) -> None:
        self.statements = statements
        self.dialect = statements.name
        self.info: dict[str, Any] = {}
        # What a hook or a service keeps across units. On SQLite it is the writer connection's: it lasts across the
        # units of a group commit (each unit's changes to it undone with the unit) and across transactions, for as
        # long as no other connection commits (see `SqliteHot._check_kept`); a unit that changes rows something here was
        # read from must update it or drop it. On PostgreSQL each unit starts with it empty.
        self.shared: dict[str, Any] = {} if shared is None else shared
        self._queued: Queued = []
        # How to tell, on another connection, whether this transaction committed: set by a hook (the audit module's,
        # by the entry it appends) for an append, whose batch is tried again only where it did not (`PostgresHot`).
        self.witness: Witness | None = None

    def add(self, build: Stmt, rows: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> None:
        """Queue a statement with one parameter set, or several (an executemany); none queues nothing."""
        stmt = self.statements[build]
        many = [rows] if isinstance(rows, Mapping) else list(rows)
        if many:
            self._queued.append((stmt, [stmt.params(r) for r in many]))

    @abstractmethod
    async def fetch(self, build: Stmt, params: Mapping[str, Any], *,
                    raw: bool = False) -> list[Row]:
        """Run what is queued, then this statement, and return its rows (inside the transaction); `raw`: as
        the driver gave them, before the column types' result processors (`Compiled.row`)."""


class HotDatabase(ABC):
    """The hot routes' database: one per worker, opened in the app's lifespan."""

    statements: Statements

    def __init__(self, before_commit: BeforeCommit) -> None:
        self.before_commit = before_commit
        self._memos: dict[str, Memo] = {}

    def memo(self, name: str, size: int = 256) -> Memo:
        """A bounded memo kept with this database (so test databases never share one). The default bounds a
        memo of loaded screens or of their bodies (a few to ~20 KB each) to a few MB per worker: plenty for the
        screens a worker's tablets have open at once."""
        memo = self._memos.get(name)
        if memo is None:
            memo = self._memos[name] = Memo(size)
        return memo

    async def read_one(self, build: Stmt, params: Mapping[str, Any], *,
                       raw: bool = False) -> Row | None:
        rows = await self.read_all(build, params, raw=raw)
        return rows[0] if rows else None

    @abstractmethod
    async def read_all(self, build: Stmt, params: Mapping[str, Any], *,
                       raw: bool = False) -> list[Row]:
        """One statement, its own consistent snapshot, no lock; `raw` as in `WriteTx.fetch`."""

    @abstractmethod
    def write(self) -> AbstractAsyncContextManager[WriteTx]:
        """A write transaction: committed when the block ends, rolled back if it raises."""

    def append(self) -> AbstractAsyncContextManager[WriteTx]:
        """A write that only adds rows - a read's audit entry, an assessment record: it may `add` statements
        and audit entries but not `fetch`. Committed together with the other appends of the moment (group
        commit), and the block returns once they are: nothing is shown before its audit entry is durable."""
        return self.write()

    @abstractmethod
    async def open(self) -> None:
        """Connect; called once in the lifespan."""

    @abstractmethod
    async def close(self) -> None:
        """Wait for what is in flight, then disconnect; called once at the end of the lifespan."""


def hot_database(engine: Engine, before_commit: BeforeCommit, *, pool_size: int) -> HotDatabase:
    if engine.dialect.name == "sqlite":
        return SqliteHot(engine, before_commit)
    if engine.dialect.name == "postgresql":
        return PostgresHot(engine, before_commit, pool_size=pool_size)
    raise ValueError(f"no driver-level path for {engine.dialect.name}")


# -- SQLite ------------------------------------------------------------------------------------------

# Commits between checkpoints of the write-ahead log, which run in a thread (SqliteHot._checkpoint).
CHECKPOINT_EVERY = 500
# A checkpoint starts the log again (see SqliteHot._checkpoint_sync) once the log's file has grown past this, and
# waits at most RESTART_WAIT_MS, holding the writer gate, for readers to leave it. Writers wait for that step (it
# syncs what was written since the last pass: some 5 ms under steady load here), so a large log makes it rare.
RESTART_AFTER_BYTES = WAL_SIZE_LIMIT
RESTART_WAIT_MS = 20
_FRAME_HEADER = 24  # bytes before each page in the log (SQLite's file format)


class _SqliteWriteTx(WriteTx):
    def __init__(self, statements: Statements, cursor: sqlite3.Cursor, shared: dict[str, Any]) -> None:
        super().__init__(statements, shared)
        self.cursor = cursor

    def flush(self) -> None:
        for stmt, many in self._queued:
            if len(many) == 1:
                self.cursor.execute(stmt.sql, many[0])
            else:
                self.cursor.executemany(stmt.sql, many)
        self._queued.clear()

    async def fetch(self, build: Stmt, params: Mapping[str, Any], *,
                    raw: bool = False) -> list[Row]:
        self.flush()
        stmt = self.statements[build]
        return _rows(stmt, self.cursor.execute(stmt.sql, stmt.params(params)).fetchall(), raw)


@dataclass
class _Batch:
    committed: asyncio.Future[None]
    open: int = 0  # units inside the batch right now
    lost: BaseException | None = None  # set when SQLite rolled the whole transaction back itself
    shared: dict[str, Any] = field(default_factory=dict)  # WriteTx.shared: the writer connection's (SqliteHot._kept)


class SqliteHot(HotDatabase):
    """Two sqlite3 connections per worker, used from the event loop: one reads, one writes.

    Writes are group-committed on the writer connection (see `write`). A batch's `BEGIN IMMEDIATE` takes
    the same writer gate as the ORM's threads and the other workers (`screening.db.WriterGate`), so every
    writer queues in one line. Reads use their own connection: in WAL mode a reader never waits for a
    writer, and never sees a write in progress.
    """

    def __init__(self, engine: Engine, before_commit: BeforeCommit) -> None:
        super().__init__(before_commit)
        self.statements = Statements(_named(engine.dialect))
        self._engine = engine
        self._reader = self._connect()
        self._writer = self._connect()
        # Checkpoints run in a thread: their fsync must not stall the loop.
        self._writer.execute("PRAGMA wal_autocheckpoint=0")
        self._page_size: int = self._writer.execute("PRAGMA page_size").fetchone()[0]
        self._cursor = self._writer.cursor()
        self._lock = asyncio.Lock()
        self._gate = writer_gate(engine)
        self._commits = 0
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._batch: _Batch | None = None
        # Units queued for the batch being opened (waiting on `_lock` while the first waits for the write lock).
        self._joining = 0
        self._appends: list[tuple[_AppendTx, asyncio.Future[_Batch]]] = []
        self._appender: asyncio.Task[None] | None = None
        # WriteTx.shared, kept with the writer connection while the database holds exactly what it last committed:
        # SQLite's data_version changes when any other connection (another worker, the ORM, a command) commits.
        self._kept: dict[str, Any] = {}
        self._data_version: int | None = None

    async def open(self) -> None:
        """Nothing to wait for: sqlite3 opens both connections when the object is made."""

    def _connect(self) -> sqlite3.Connection:
        database = self._engine.url.database
        if not database:
            raise ValueError("the hot path needs a SQLite database file")
        conn = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        sqlite_pragmas(conn, None)
        # Never wait inside the driver on the loop: a busy lock sends the wait to a thread instead.
        conn.execute("PRAGMA busy_timeout=0")
        return conn

    async def read_all(self, build: Stmt, params: Mapping[str, Any], *,
                       raw: bool = False) -> list[Row]:
        stmt = self.statements[build]
        values = stmt.params(params)
        try:
            rows = self._reader.execute(stmt.sql, values).fetchall()
        except sqlite3.OperationalError as exc:
            # Rare in WAL mode (e.g. while another process recovers the log): wait in a thread.
            if not sqlite_busy(exc):
                raise
            rows = await anyio.to_thread.run_sync(self._read_waiting, stmt.sql, values)
        return _rows(stmt, rows, raw)

    def _read_waiting(self, sql: str, values: dict[str, Any]) -> list[Any]:
        conn = self._engine.raw_connection()
        try:
            cur = conn.cursor()
            cur.execute(sql, values)
            return list(cur.fetchall())
        finally:
            conn.close()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[WriteTx]:
        """A unit of work inside the batch transaction that is open now, or a new one.

        Group commit: every unit that runs before the loop gets round to the commit joins one transaction,
        each inside its own savepoint, so a unit that fails rolls back alone; so do the units that queued while
        the batch waited for another worker to let go of the write lock. Each unit returns only when
        its batch has committed, so nothing is acknowledged before it is durable. Units are serialised on
        the connection (they never await between SAVEPOINT and RELEASE), so each sees the ones before it,
        as if each had its own transaction; the audit chain included. Measured: a PATCH's transaction cost
        117 us of CPU on its own and ~65 us in a batch of four or more (COMMIT, locks, and pages written once).
        """
        batch = await self._enter_batch()
        async with self._unit(batch) as tx:
            yield tx
        await asyncio.shield(batch.committed)

    @asynccontextmanager
    async def append(self) -> AsyncIterator[WriteTx]:
        """An append, queued without the write lock and written with the other appends of the moment.

        A unit of `write()` holds the write lock from its BEGIN until the loop reaches the batch's COMMIT, which
        is after every callback ready at the time: other requests' work, not the batch's. An append needs no
        read-modify-write, so it waits for the lock in a queue instead: one task takes the lock, writes every
        append waiting (each in its savepoint, with its audit entry) and commits at once. With several
        workers, that keeps the lock for the writes alone."""
        tx = _AppendTx(self.statements)
        yield tx
        loop = asyncio.get_running_loop()
        done: asyncio.Future[_Batch] = loop.create_future()
        self._appends.append((tx, done))
        if _idle(self._appender):
            self._appender = _serving(self._appends, self._append_batches())
        batch = await asyncio.shield(done)
        await asyncio.shield(batch.committed)

    async def _append_batches(self) -> None:
        appends: list[tuple[_AppendTx, asyncio.Future[_Batch]]] = []
        try:
            while self._appends:
                try:
                    batch = await self._enter_batch()
                except Exception as exc:  # noqa: BLE001 - no lock (another writer held it too long): each append fails
                    appends = self._appends[:]
                    self._appends.clear()
                    for _, done in appends:
                        _fail(done, exc)
                    continue
                # Taken once the lock is held: the appends that queued while it was awaited come too.
                appends = self._appends[:]
                self._appends.clear()
                for i, (queued, done) in enumerate(appends):
                    try:
                        async with self._unit(batch) as tx:
                            tx.info.update(queued.info)
                            tx._queued.extend(queued._queued)
                    except Exception as exc:  # noqa: BLE001 - reported to the request that made it
                        _fail(done, exc)
                    else:
                        done.set_result(batch)
                    if batch.lost is not None:  # SQLite ended the transaction: the rest go in a new one
                        self._appends[:0] = appends[i + 1:]
                        break
                self._commit(batch)
        finally:
            _cancel_unanswered(appends)  # all answered, unless this task was cancelled mid-batch

    async def _enter_batch(self) -> _Batch:
        """The batch transaction open now, or a new one (BEGIN IMMEDIATE), its COMMIT scheduled."""
        batch = self._batch
        if batch is None:
            self._joining += 1
            try:
                async with self._lock:  # one coroutine opens a batch; the slow path waits in a thread meanwhile
                    batch = self._batch
                    if batch is None:
                        await self._begin()
                        loop = asyncio.get_running_loop()
                        batch = self._batch = _Batch(loop.create_future(), shared=self._kept)
                        loop.call_soon(self._commit, batch)
            finally:
                self._joining -= 1
        return batch

    @asynccontextmanager
    async def _unit(self, batch: _Batch) -> AsyncIterator[_SqliteWriteTx]:
        """One unit of `batch`, in its own savepoint, with the before-commit hook run at its end."""
        if batch.open:
            # Another unit is between its SAVEPOINT and RELEASE: it awaited something real, which a unit on
            # this connection must never do (the two would share one savepoint stack).
            raise RuntimeError("a SQLite hot unit of work awaited inside write(): units must run straight through")
        tx = _SqliteWriteTx(self.statements, self._cursor, batch.shared)
        shared_before = dict(batch.shared)
        batch.open += 1
        try:
            self._cursor.execute("SAVEPOINT unit")
            try:
                yield tx
                await self.before_commit(tx)
                tx.flush()
            except BaseException as exc:
                batch.shared.clear()
                batch.shared.update(shared_before)
                self._undo_unit(batch, exc)
                raise
            self._cursor.execute("RELEASE unit")
        finally:
            batch.open -= 1

    def _undo_unit(self, batch: _Batch, exc: BaseException) -> None:
        """Roll the failed unit back to its savepoint. Some errors (a full disk, an I/O error) make SQLite end the
        whole transaction itself: then every unit of the batch is lost, and none may be acknowledged."""
        if self._writer.in_transaction:
            try:
                self._cursor.execute("ROLLBACK TO unit")
                self._cursor.execute("RELEASE unit")
                return
            except sqlite3.Error:
                pass
        batch.lost = exc
        self._kept.clear()  # the units before, which it may hold, are gone too
        if self._batch is batch:
            self._batch = None  # later units open a new batch, once this one has let the lock go

    def _commit(self, batch: _Batch) -> None:
        if batch.committed.done():
            return  # committed already (an append batch commits as soon as it is written)
        loop = asyncio.get_running_loop()
        # A unit still inside: commit after it. Units that queued while the batch waited for the write lock (another
        # process held it) join it before it commits, rather than each waiting for the lock again; they queued
        # before the batch existed, so there are only so many, and units that come later join it without queueing.
        if batch.open or (self._joining and batch is self._batch):
            loop.call_soon(self._commit, batch)
            return
        if self._batch is batch:
            self._batch = None
        try:
            if batch.lost is not None:
                raise sqlite3.OperationalError(
                    f"the batch's transaction was rolled back by SQLite ({type(batch.lost).__name__})")
            self._cursor.execute("COMMIT")
        except sqlite3.Error as exc:
            self._kept.clear()
            if self._writer.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._cursor.execute("ROLLBACK")
            _fail(batch.committed, exc)
        else:
            batch.committed.set_result(None)
        finally:
            self._gate.release()
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY and self._checkpoint_task is None:
            self._commits = 0
            self._checkpoint_task = loop.create_task(self._checkpoint())

    async def _begin(self) -> None:
        if self._gate.try_acquire():
            try:
                self._cursor.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                self._gate.release()
                if not sqlite_busy(exc):
                    raise
            else:
                self._check_kept()
                return
        await anyio.to_thread.run_sync(self._begin_waiting)
        self._check_kept()

    def _check_kept(self) -> None:
        """Inside the new transaction: drop what is kept if another connection has committed since this one last
        looked (data_version "will be different if changes were committed to the database by any other connection
        in the interim", and is unchanged by this connection's own: sqlite.org/pragma.html#pragma_data_version)."""
        try:
            version = self._cursor.execute("PRAGMA data_version").fetchone()[0]
        except BaseException:
            self._kept.clear()
            with contextlib.suppress(sqlite3.Error):
                self._cursor.execute("ROLLBACK")
            self._gate.release()
            raise
        if version != self._data_version:
            self._kept.clear()
            self._data_version = version

    def _begin_waiting(self) -> None:
        """In a thread: wait for the writer gate (this process, then every process), then for SQLite's own lock
        should a writer outside the gate hold it, as long as the ORM would."""
        if not self._gate.acquire():
            raise sqlite3.OperationalError("database is locked")
        try:
            self._writer.execute(f"PRAGMA busy_timeout={int(self._gate.timeout * 1000)}")
            try:
                self._cursor.execute("BEGIN IMMEDIATE")
            finally:
                self._writer.execute("PRAGMA busy_timeout=0")
        except BaseException:
            self._gate.release()
            raise

    async def _checkpoint(self) -> None:
        """Copy the write-ahead log into the database file and start it again, off the loop (see _checkpoint_sync)."""
        try:
            await anyio.to_thread.run_sync(self._checkpoint_sync)
        except Exception as exc:  # noqa: BLE001 - a missed checkpoint is made up by the next one
            log.warning("WAL checkpoint failed: %s", type(exc).__name__)
        finally:
            self._checkpoint_task = None

    def _checkpoint_sync(self) -> None:
        """A PASSIVE checkpoint copies what the log holds without blocking anyone. SQLite starts the log again
        from its beginning only once every frame in it has been copied, which a checkpoint running beside steady
        writes never achieves: the log's file grew with every commit for as long as the writes went on. So once
        the log is longer than RESTART_AFTER_BYTES, a RESTART checkpoint follows, holding the writer gate: it
        copies the little written meanwhile, and the next writer starts the log again. Writers wait for it, so
        it runs only then, not at every checkpoint."""
        conn = self._engine.raw_connection()
        try:
            cur = conn.cursor()
            _busy_readers, frames, _copied = cur.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames * (self._page_size + _FRAME_HEADER) <= RESTART_AFTER_BYTES:
                return
            if not self._gate.acquire():
                return  # writers kept the lock all along: the next checkpoint tries again
            try:
                # A reader's open snapshot (a long export, say) keeps the log from restarting: wait for it briefly
                # only, as writers queue behind the gate meanwhile; the next checkpoint tries again.
                cur.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
                cur.execute("PRAGMA wal_checkpoint(RESTART)")
            finally:
                cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                self._gate.release()
        finally:
            conn.close()

    async def close(self) -> None:
        if self._appender is not None and not self._appender.done():
            await self._appender
        if self._batch is not None:
            await asyncio.shield(self._batch.committed)
        if self._checkpoint_task is not None:
            await self._checkpoint_task
        self._reader.close()
        self._writer.close()


def _named(dialect: Dialect) -> Dialect:
    """The same SQLite dialect with named parameters (`:name`), which sqlite3 takes as a dict."""
    return type(dialect)(paramstyle="named")  # type: ignore[call-arg]


# -- PostgreSQL --------------------------------------------------------------------------------------


async def _send(cur: AsyncCursor[Any], queued: Queued) -> None:
    """Queued statements, in a pipeline: one parameter set each, or several (an executemany)."""
    for stmt, many in queued:
        if len(many) == 1:
            await cur.execute(stmt.sql, many[0])
        else:
            await cur.executemany(stmt.sql, many)


async def _commit_statements(conn: AsyncConnection[Any], queued: Queued) -> None:
    """Statements in one transaction and one round trip; a single statement is its own transaction."""
    if not queued:
        return
    if len(queued) == 1 and len(queued[0][1]) == 1:
        stmt, (params,) = queued[0]
        await conn.execute(stmt.sql, params)
        return
    cur = conn.cursor()
    async with conn.pipeline():
        await cur.execute("BEGIN")
        await _send(cur, queued)
        await cur.execute("COMMIT")


class _PostgresWriteTx(WriteTx):
    """A write transaction on one connection, in one pipeline held open until its COMMIT: each round trip before the
    COMMIT's ends with a Sync alone.

    psycopg ends a pipeline with a Sync and then a Flush; PostgreSQL, reading that Flush after it has said it is
    ready, stops the clock of its idle_in_transaction_session_timeout (`screening.db.IDLE_IN_TRANSACTION_TIMEOUT`) and
    does not start it again. So a transaction whose first round trip was a whole pipeline was never ended for idling:
    an instance stopped after it held its screen's row for as long as it stayed stopped."""

    def __init__(self, statements: Statements, conn: AsyncConnection[Any]) -> None:
        super().__init__(statements)
        self.conn = conn
        self._pipeline = contextlib.AsyncExitStack()
        self._sync: Callable[[], Awaitable[None]] | None = None  # the open pipeline's, once the transaction has begun

    async def fetch(self, build: Stmt, params: Mapping[str, Any], *,
                    raw: bool = False) -> list[Row]:
        stmt = self.statements[build]
        cur = self.conn.cursor()
        if self._sync is None:
            self._sync = (await self._pipeline.enter_async_context(self.conn.pipeline())).sync
            await cur.execute("BEGIN")
        await _send(cur, self._queued)
        self._queued.clear()
        await cur.execute(stmt.sql, stmt.params(params))
        await self._sync()
        return _rows(stmt, await cur.fetchall(), raw)

    async def commit(self) -> None:
        """What is queued and COMMIT, in one round trip."""
        if self._sync is None:
            await _commit_statements(self.conn, self._queued)
            return
        cur = self.conn.cursor()
        await _send(cur, self._queued)
        await cur.execute("COMMIT")
        await self._pipeline.aclose()  # sent with the pipeline's end, and its results read

    async def abandon(self, exc: BaseException) -> None:
        """The pipeline ended after `exc`, if it is open, before the transaction is rolled back."""
        with contextlib.suppress(Exception):  # psycopg logs what it meets there
            await self._pipeline.__aexit__(type(exc), exc, exc.__traceback__)


class _AppendTx(WriteTx):
    async def fetch(self, build: Stmt, params: Mapping[str, Any], *,
                    raw: bool = False) -> list[Row]:
        raise TypeError("an append only adds rows: use write() to read inside a transaction")


_Unit = tuple[Queued, Witness | None, "asyncio.Future[None]"]


class _Read(NamedTuple):
    sql: str
    values: dict[str, Any]
    # For a `Keyed` read: the statement that answers it with the others of its statement at once, and the keys'
    # values as the caller gave them (`values` has been through the bind processors, which `many`'s arrays apply).
    many: Compiled | None
    params: Mapping[str, Any]
    future: asyncio.Future[list[Any]]  # last, as `_cancel_unanswered` expects


def _serving(queue: list[Any], work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A task that serves `queue` (items whose last member is the future their requester awaits). Should it be
    cancelled (a hard shutdown), what it leaves queued is cancelled too: no requester waits for ever."""
    task = asyncio.get_running_loop().create_task(work)

    def ended(done: asyncio.Task[None]) -> None:
        if done.cancelled():
            _cancel_unanswered(queue)
            queue.clear()

    task.add_done_callback(ended)
    return task


def _idle(task: asyncio.Task[None] | None) -> bool:
    return task is None or task.done()


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a failed future's exception as seen: asyncio logs one that nobody retrieved."""
    if not future.cancelled():
        future.exception()


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    """Fail a requester's future; seen even if the requester has gone (a client disconnect)."""
    future.set_exception(exc)
    future.add_done_callback(_retrieved)


# Why a batch failed: its items (a statement's error: tried again one by one), its connection (lost: tried again whole
# on a new one), or a wait that ran out (no connection, or a lock held by another, in time: the items left fail at once).
Blame = Literal["items", "connection", "wait"]


def _waited_out(exc: BaseException) -> bool:
    """The pool had no connection to give within `POOL_WAIT`, or a lock was not had within `LOCK_TIMEOUT`."""
    from psycopg.errors import LockNotAvailable  # not at the top: SQLite's start does not import psycopg
    from psycopg_pool import PoolTimeout

    return isinstance(exc, PoolTimeout | LockNotAvailable)


def _cancel_unanswered(items: list[Any]) -> None:
    """Cancel the futures (each item's last member) not yet answered: what a cancelled task leaves."""
    for item in items:
        if not item[-1].done():
            item[-1].cancel()


def _merged(units: list[_Unit]) -> Queued:
    """The units' statements with each statement's parameter sets together, so that a batch sends one
    executemany per statement rather than one execute per unit: psycopg spends some 10 us of the client's CPU
    on each execute beyond what a row of an executemany costs. Each unit's statements keep their order (a
    unit's next statement joins a group after the one its last joined); the units, independent appends, need
    none among themselves."""
    groups: Queued = []
    for queued, *_ in units:
        at = 0
        for stmt, many in queued:
            for i in range(at, len(groups)):
                if groups[i][0] is stmt:
                    groups[i][1].extend(many)
                    at = i
                    break
            else:
                at = len(groups)
                groups.append((stmt, list(many)))
    return groups


async def _run_units(conn: AsyncConnection[Any], units: list[_Unit]) -> list[None]:
    """The units' statements in one transaction and one round trip."""
    try:
        await _commit_statements(conn, _merged(units))
    except BaseException:
        if not conn.closed:
            await conn.rollback()
        raise
    return [None] * len(units)


async def _run_reads(conn: AsyncConnection[Any], reads: list[_Read]) -> list[list[Any]]:
    """The reads' rows: their statements in one pipeline (one round trip), or one statement alone. Reads of one
    `Keyed` statement go as that statement's `many` form, one statement for them all; reads of another statement
    as one executemany returning a result set per parameter set (see `_merged`)."""
    if len(reads) == 1:
        read = reads[0]
        return [await (await conn.execute(read.sql, read.values)).fetchall()]
    by_sql: dict[str, list[int]] = {}
    for i, read in enumerate(reads):
        by_sql.setdefault(read.sql, []).append(i)
    # Per statement: a cursor, its reads, and the `many` form that answers them at once (none for a lone read).
    groups = [(conn.cursor(), positions, reads[positions[0]].many if len(positions) > 1 else None)
              for positions in by_sql.values()]
    async with conn.pipeline():
        for cur, positions, many in groups:
            if many is not None:
                arrays = {name: [reads[i].params[name] for i in positions] for name in reads[positions[0]].params}
                await cur.execute(many.sql, many.params(arrays))
            elif len(positions) == 1:
                await cur.execute(reads[positions[0]].sql, reads[positions[0]].values)
            else:
                await cur.executemany(reads[positions[0]].sql, [reads[i].values for i in positions], returning=True)
    rows: list[list[Any]] = [[] for _ in reads]
    for cur, positions, many in groups:
        if many is not None:
            for n, *row in await cur.fetchall():  # n: the ordinal of the read's keys in the arrays, from 1
                rows[positions[n - 1]].append(row)
            continue
        for k, i in enumerate(positions):
            if k:
                cur.nextset()
            rows[i] = await cur.fetchall()
    return rows


async def _generic_plans(conn: AsyncConnection[Any]) -> None:
    """The hot statements are lookups by key, for which a plan made once is right. With the default (auto),
    PostgreSQL planned a `Keyed.many` statement afresh on every run (pg_prepared_statements: 20 custom plans in 20
    runs; the plan took 0.23 ms here), its custom plans looking cheaper than a generic one for a number of rows it
    cannot know. A SET once per connection rather than a start-up option, which PgBouncer refuses."""
    await conn.execute("SET plan_cache_mode = force_generic_plan")


class PostgresHot(HotDatabase):
    """psycopg's asyncio connections in a pool of their own, in autocommit mode: transactions are explicit.

    Appends (a read's audit entry, an assessment record) are group-committed: one task per worker sends
    every append waiting at the moment in one transaction and one round trip, and the next batch gathers
    while it does. If a batch's statements fail, each of its appends is tried again on its own, so one bad
    append never fails another request (`_in_batches` says what happens when its connection fails instead).

    Reads outside a transaction are batched the same way: the reads waiting at the moment go in one pipeline,
    on one connection and in one round trip, those of one `Keyed` statement (a screen's load) as one statement.
    In a pipeline they share an implicit transaction, but each statement still takes its own snapshot (READ
    COMMITTED, which the writes assume too) when the batch is sent, after every write acknowledged before the
    read was asked for. A batch whose statements fail is tried again one read at a time, so one bad read never
    fails another. Measured under load with one worker (16 connections), server CPU per request fell from 0.30 to
    0.25 ms for the assessment and from 0.26 to 0.21 ms for the screen read: each read had taken a connection
    from the pool and waited on its own round trip.
    """

    def __init__(self, engine: Engine, before_commit: BeforeCommit, *, pool_size: int) -> None:
        from psycopg_pool import AsyncConnectionPool

        super().__init__(before_commit)
        self.statements = Statements(engine.dialect)
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            url, min_size=pool_size, max_size=pool_size, open=False, name="screening-hot", timeout=POOL_WAIT,
            # Named in pg_stat_activity; its waits on the network bounded as the ORM's are.
            kwargs={"autocommit": True, "application_name": "screening-hot", **connect_args(engine.url)},
            configure=self._configure,
        )
        # Which drain of the pool each connection came after (`_lost`): weakly held, as the pool owns them.
        self._generation = 0
        self._born: weakref.WeakKeyDictionary[AsyncConnection[Any], int] = weakref.WeakKeyDictionary()
        self._opened = False
        self._appends: list[_Unit] = []
        self._flusher: asyncio.Task[None] | None = None
        self._reads: list[_Read] = []
        self._reading: asyncio.Task[None] | None = None

    async def open(self) -> None:
        await self._pool.open(wait=True)
        self._opened = True

    async def _configure(self, conn: AsyncConnection[Any]) -> None:
        await _generic_plans(conn)
        self._born[conn] = self._generation

    async def _lost(self, conn: AsyncConnection[Any]) -> None:
        """A connection of the pool was found lost: a failover or a network cut takes its siblings too, and the pool
        does not ping them (that would be a round trip per tap), so they are closed and replaced (psycopg_pool's
        drain), once for all the connections made before. The next request then waits for a new connection, up to
        `POOL_WAIT`, instead of meeting a dead one: after a failover, none fails but the one that found it."""
        if self._born.get(conn) == self._generation:
            self._generation += 1
            await self._pool.drain()

    async def read_all(self, build: Stmt, params: Mapping[str, Any], *,
                       raw: bool = False) -> list[Row]:
        """The statement's rows, read in the next batch (see the class)."""
        stmt = self.statements[build]
        many = self.statements[build.many] if isinstance(build, Keyed) else None
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[Any]] = loop.create_future()
        self._reads.append(_Read(stmt.sql, stmt.params(params), many, params, done))
        if _idle(self._reading):
            self._reading = _serving(self._reads, self._in_batches(self._reads, _run_reads))
        return _rows(stmt, await asyncio.shield(done), raw)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A connection of the pool, for a write or a batch; one that an error finds lost goes to `_lost`."""
        async with self._pool.connection() as conn:
            try:
                yield conn
            except BaseException:
                if conn.closed:
                    await self._lost(conn)
                raise

    @asynccontextmanager
    async def write(self) -> AsyncIterator[WriteTx]:
        async with self._connection() as conn:
            tx = _PostgresWriteTx(self.statements, conn)
            try:
                yield tx
                await self.before_commit(tx)
                await tx.commit()
            except BaseException as exc:
                await tx.abandon(exc)
                # Rolls back only if a transaction is open; a broken connection is dropped by the pool.
                if not conn.closed:
                    await conn.rollback()
                raise

    @asynccontextmanager
    async def append(self) -> AsyncIterator[WriteTx]:
        tx = _AppendTx(self.statements)
        yield tx
        await self.before_commit(tx)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._appends.append((tx._queued, tx.witness, done))
        if _idle(self._flusher):
            self._flusher = _serving(self._appends, self._in_batches(self._appends, _run_units, self._landed))
        await asyncio.shield(done)

    async def _in_batches(self, waiting: list[Any],
                          run: Callable[[AsyncConnection[Any], list[Any]], Awaitable[list[Any]]],
                          landed: Callable[[list[Any]], Awaitable[bool | None]] | None = None) -> None:
        """Run what is `waiting` (items whose last member is the future their requester awaits) in batches until
        none is left: each batch on one connection, by `run`, which gives one result per item; what comes in
        meanwhile waits for the next.

        A batch whose statements failed is tried again item by item, so one bad item fails alone. One whose
        connection was lost (cut in a failover, or closed by the kernel when the network went silent) is tried again
        whole, once, on a new connection (`_lost`): the items were not at fault. A batch of appends is first asked
        whether it `landed`, since its connection may have been lost after the server committed it, and sent again it
        would be written twice: one that landed is answered as done, and one that cannot be told fails as its
        connection did. Once the pool has had no connection to give, a lock was not had in time, or a second
        connection was lost, the items left fail with that error at once: each would only wait as long again
        (`POOL_WAIT`, `screening.db.LOCK_TIMEOUT` or `TCP_USER_TIMEOUT`)."""
        batch: list[Any] = []
        try:
            while waiting:
                batch = waiting[:]
                waiting.clear()
                results, failed, blame = await self._attempt(run, batch)
                if blame == "connection":
                    done = False if landed is None else await landed(batch)
                    if done:
                        results, failed, blame = [None] * len(batch), None, None
                    elif done is not None:
                        results, failed, blame = await self._attempt(run, batch)
                    # None: whether they were written cannot be told, so none is sent again; they fail as below
                if failed is None:
                    for item, result in zip(batch, results, strict=True):
                        item[-1].set_result(result)
                    continue
                for item in batch:
                    if blame != "items":
                        _fail(item[-1], failed)
                        continue
                    one, exc, why = await self._attempt(run, [item])
                    if exc is None:
                        item[-1].set_result(one[0])
                    else:
                        _fail(item[-1], exc)
                        failed, blame = exc, why
        finally:
            _cancel_unanswered(batch)  # all answered, unless this task was cancelled mid-batch

    async def _attempt(self, run: Callable[[AsyncConnection[Any], list[Any]], Awaitable[list[Any]]],
                       items: list[Any]) -> tuple[list[Any], BaseException | None, Blame | None]:
        """`run` on a connection of the pool: its results, or the error and whose fault it is (`Blame`)."""
        conn: AsyncConnection[Any] | None = None
        try:
            async with self._connection() as conn:
                return await run(conn, items), None, None
        except Exception as exc:  # noqa: BLE001 - reported to the requests, by the caller
            if conn is not None and conn.closed:
                return [], exc, "connection"
            return [], exc, "wait" if _waited_out(exc) else "items"

    async def _landed(self, units: list[_Unit]) -> bool | None:
        """Whether a batch of appends whose connection was lost committed before it was (the units of a batch commit
        together): the first unit's witness, read on another connection. None where it cannot be told: no unit has a
        witness, or that connection fails too."""
        witness = next((w for _, w, _ in units if w is not None), None)
        if witness is None:
            return None
        try:
            async with self._connection() as conn, conn.transaction():
                cur = conn.cursor()
                for build, params in witness:
                    stmt = self.statements[build]
                    await cur.execute(stmt.sql, stmt.params(params))
                row = await cur.fetchone()
        except Exception as exc:  # noqa: BLE001 - the batch fails with the error that lost its connection
            # The class alone: a driver's message can quote the values sent.
            log.warning("could not tell whether a batch of appends cut off at its commit was written: %s",
                        type(exc).__name__)
            return None
        return bool(row and row[0])

    async def close(self) -> None:
        for task in (self._reading, self._flusher):
            if task is not None and not task.done():
                await task
        if self._opened:
            await self._pool.close()
