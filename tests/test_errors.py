"""Which database errors are the database being away (503, worth sending again) and which are the service's own."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from psycopg_pool import PoolTimeout
from sqlalchemy import exc as sa_exc

from screening.errors import database_unavailable


@pytest.mark.parametrize("exc", [
    psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"),
    PoolTimeout("couldn't get a connection after 30.00 sec"),
    psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
    psycopg.errors.DeadlockDetected("deadlock detected"),
    sqlite3.OperationalError("database is locked"),
    sa_exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked")),
    sa_exc.OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused")),
    sa_exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
    sa_exc.InterfaceError("SELECT 1", {}, Exception("closed"), connection_invalidated=True),
], ids=lambda e: type(e).__name__)
def test_the_database_away_is_unavailable(exc: Exception) -> None:
    assert database_unavailable(exc)


@pytest.mark.parametrize("exc", [
    sqlite3.OperationalError("no such table: screens"),
    sa_exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("no such column: x")),
    sa_exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")),
    psycopg.errors.UniqueViolation("duplicate key value violates unique constraint"),
    ValueError("a bug"),
], ids=lambda e: type(e).__name__)
def test_the_services_own_faults_are_not(exc: Exception) -> None:
    assert not database_unavailable(exc)
