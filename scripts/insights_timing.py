"""Time the commissioners' summary over a large synthetic caseload on a throw-away SQLite database.

    PYTHONPATH=$PWD .venv/bin/python scripts/insights_timing.py [SCALE] [MONTHS]

SCALE multiplies the test caseload (about 80 screens a month at 1); MONTHS is how many months back.
Prints the number of screens and the median of three computations (query, scoring, suppression).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from screening import migrate
from screening.auth.models import Role
from screening.auth.service import create_user
from screening.config import Settings
from screening.db import make_engine, make_session_factory
from screening.insights import service, views
from screening.instruments.registry import load_registry
from tests.insights.caseload import build, insert, month_of

KEY = "timing-person-key-0123456789abcdefghij"


def main(scale: int, months: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(environment="test", data_dir=Path(tmp), person_key=KEY)
        engine = make_engine(settings)
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        cases = build(seed=1, months_back=months, scale=scale)
        with factory() as session:
            nurse = create_user(session, "nurse", "a long passphrase here", Role.nurse, custody_suites=["Leeds Central"])
            session.commit()
            insert(session, cases, nurse.id, KEY)
        registry = load_registry(None)
        span = sorted({month_of(c.at) for c in cases})
        period = service.period(span[0], span[-1])
        times = []
        for _ in range(3):
            with factory() as session:
                start = time.perf_counter()
                views.summary(service.compute(session, registry, settings, period), None)
                times.append(time.perf_counter() - start)
                session.rollback()
        engine.dispose()
    print(f"{len(cases)} screens over {months} months: summary in {statistics.median(times):.2f} s (median of 3)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10, int(sys.argv[2]) if len(sys.argv) > 2 else 12)
