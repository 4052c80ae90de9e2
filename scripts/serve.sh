#!/usr/bin/env bash
# Sets everything up and runs the service on the embedded default: SQLite under ./var, shipped model.
# Creates a first nurse and admin account on a new database (passwords printed once, below).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh runtime
export SCREENING_DATA_DIR="${SCREENING_DATA_DIR:-./var}"
.venv/bin/screening migrate
if [[ ! -f "$SCREENING_DATA_DIR/.seeded" ]]; then
  pw=$(.venv/bin/python -c "import secrets; print(secrets.token_urlsafe(12))")
  .venv/bin/screening users add nurse --role nurse --password "$pw" --suite "Example Custody Suite" --full-name "Demo Nurse"
  .venv/bin/screening users add admin --role admin --password "$pw" --full-name "Demo Admin"
  echo "first accounts: nurse / admin, password: $pw" | tee "$SCREENING_DATA_DIR/.seeded"
fi
exec .venv/bin/screening serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" "$@"
