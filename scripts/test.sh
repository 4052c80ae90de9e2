#!/usr/bin/env bash
# Sets everything up and runs the whole test suite against SQLite and PostgreSQL (127.0.0.1:5432,
# database `test`, or SCREENING_TEST_POSTGRES_URL). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
export SCREENING_TEST_POSTGRES_URL="${SCREENING_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
.venv/bin/ruff check .
.venv/bin/python -m mypy screening  # strict (pyproject.toml): the service package type-checks clean
exec .venv/bin/python -m pytest -n 2 --dist loadgroup "$@"
