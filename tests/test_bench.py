"""The benchmark's verdicts (a row with a goal is judged on the medians of its repeated measurements), the timer of
its in-process row for a PATCH's statements on SQLite, and its rows for a PATCH inside PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bench.__main__ import Run, _each, _goal, median_run, postgres_cpu_seconds
from tests.conftest import _postgres_database

PATCH, ASSESSMENT = "PATCH /screens/{id}/answers", "GET /screens/{id}/assessment"


def _run(name: str, ratio: float, p99_ms: float = 10.0, *, busiest: float | None = None, errors: int = 0) -> Run:
    """A measurement against a minimal base of 1,000 req/s, so that its req/s ratio is `ratio`."""
    workers = 1 if busiest is None else 2
    ref = Run("minimal (50 validated ints)", "-", workers, rps=1000.0, p50_ms=1.0, p99_ms=2.0, errors=0, cpu_ms=0.1,
              busiest=None if busiest is None else 0.5)
    return Run(name, "sqlite", workers, rps=1000.0 * ratio, p50_ms=5.0, p99_ms=p99_ms, errors=errors, cpu_ms=0.3,
               busiest=busiest, ref=ref)


def test_the_row_shown_is_the_median_measurement_and_carries_them_all() -> None:
    runs = [_run(PATCH, 0.45), _run(PATCH, 0.35), _run(PATCH, 0.41)]
    shown = median_run(runs)
    assert shown is runs[2]
    assert shown.repeats == runs
    assert _each(shown) == "0.45, 10 ms; 0.35, 10 ms; 0.41, 10 ms"


def test_a_goal_is_met_on_the_median_ratio_not_the_best_or_the_worst() -> None:
    assert _goal(median_run([_run(PATCH, 0.45), _run(PATCH, 0.39), _run(PATCH, 0.41)])) == ("ratio >= 0.4", "met")
    assert _goal(median_run([_run(PATCH, 0.45), _run(PATCH, 0.39), _run(PATCH, 0.38)]))[1] == "**not met**"


def test_the_assessment_needs_its_median_p99_within_the_goal_as_well() -> None:
    spiky_once = median_run([_run(ASSESSMENT, 0.5, 40.0), _run(ASSESSMENT, 0.5, 12.0), _run(ASSESSMENT, 0.5, 14.0)])
    assert _goal(spiky_once) == ("ratio >= 0.4, p99 <= 25 ms", "met")
    spiky_twice = median_run([_run(ASSESSMENT, 0.5, 40.0), _run(ASSESSMENT, 0.5, 30.0), _run(ASSESSMENT, 0.5, 14.0)])
    assert _goal(spiky_twice)[1] == "**not met**"


def test_an_even_number_of_measurements_is_judged_on_the_lower_middle_one() -> None:
    assert _goal(median_run([_run(PATCH, 0.39), _run(PATCH, 0.41)]))[1] == "**not met**"


def test_an_error_in_any_measurement_fails_the_goal() -> None:
    assert _goal(median_run([_run(PATCH, 0.5), _run(PATCH, 0.5, errors=3), _run(PATCH, 0.5)]))[1] == "**not met**"


def test_measurements_one_worker_served_alone_are_left_out_and_none_left_is_not_judged() -> None:
    uneven = _run(PATCH, 0.9, busiest=0.99)  # one worker took every connection: not a two-worker figure
    shown = median_run([uneven, _run(PATCH, 0.38, busiest=0.55), _run(PATCH, 0.36, busiest=0.6)])
    assert shown is not uneven
    assert _goal(shown)[1] == "**not met**"
    assert "(uneven)" in _each(shown)
    all_uneven = median_run([_run(PATCH, 0.5, busiest=0.9), _run(PATCH, 0.5, busiest=0.95)])
    assert _goal(all_uneven)[1] == "not judged: one worker served most of it"


def test_a_row_without_a_goal_is_not_judged() -> None:
    read = _run("GET /screens/{id}", 0.5)
    assert _goal(read) == ("", "")
    assert _each(read) == "-"


def test_the_statement_timer_counts_each_statement_on_sqlite3_and_puts_connect_back(tmp_path: Path) -> None:
    import sqlite3

    from bench.inprocess import _timed_sqlite

    connect = sqlite3.connect
    with _timed_sqlite() as timed:
        conn = sqlite3.connect(tmp_path / "timed.db", isolation_level=None)
    try:
        conn.execute("CREATE TABLE t (x)")
        cur = conn.cursor()
        cur.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
        assert cur.execute("SELECT sum(x) FROM t").fetchone() == (499500,)
        assert conn.execute("SELECT count(*) FROM t").fetchall() == [(1000,)]
    finally:
        conn.close()
    assert sqlite3.connect is connect
    assert timed.calls == 4  # the CREATE, the executemany, and the two SELECTs; the fetches are not statements
    assert timed.regions == 6
    assert timed.cpu_ns > 0 and 0 < timed.overhead_ns < timed.cpu_ns / timed.regions


@pytest.mark.postgres
def test_a_patch_inside_postgresql_is_measured_on_real_patches_against_the_server() -> None:
    from bench.inprocess import postgres_patch

    for url in _postgres_database():
        notes: list[str] = []
        # In a thread of its own, as the benchmark runs it: its event loop, and no other (a session-wide browser
        # fixture may have one running in this thread).
        with ThreadPoolExecutor(1) as pool:
            rows = pool.submit(postgres_patch, notes, url, postgres_cpu_seconds, n=100).result()
        assert notes == []
        figures = {what.split(" (")[0]: float(figure.removesuffix(" ms CPU")) for what, figure, _, _ in rows}
        assert list(figures) == [
            "answer PATCH's statements inside PostgreSQL alone, one PATCH at a time on one connection",
            "of which the least a transaction holding a screen's row costs PostgreSQL: BEGIN, the row lock",
            "hot route's work in-process, PostgreSQL, answer PATCH",
        ]
        patch, _floor, client = figures.values()
        assert patch > 0 and client > 0  # the floor, 100 short transactions, can be under one 10 ms tick
        # Every PATCH timed was a real change, with its history row and audit entry: 50 to warm up and 5 runs of
        # 100 for the server's CPU, 20 and 5 of 200 for the client's; and the screen's first answers before them.
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                events = conn.scalar(text("SELECT count(*) FROM answer_events WHERE item_id = 'phq9_1'"))
                audited = conn.scalar(text("SELECT count(*) FROM audit_entries WHERE action = 'screen.answers.update'"))
        finally:
            engine.dispose()
        assert events == audited == 1 + 50 + 5 * 100 + 20 + 5 * 200
