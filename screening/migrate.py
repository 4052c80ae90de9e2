"""Running Alembic migrations from code: on `serve` start-up, from the CLI, and in tests.

Safe to run from several instances at once: on PostgreSQL the upgrade holds an advisory lock, so one
instance migrates while the others wait and then find nothing to do.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
_MIGRATION_LOCK_KEY = 7_305_002


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # The serving limits (screening.db.LOCK_TIMEOUT, IDLE_IN_TRANSACTION_TIMEOUT) are off for this transaction:
            # it waits for another instance's migrations, and a migration may compute between its statements.
            conn.execute(text("SET LOCAL lock_timeout = 0"))
            conn.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


# Alembic is imported only to migrate. Checking that a database is current - every worker does it at
# start-up - needs only the version table and the revision ids in the migration files; importing
# Alembic's script machinery for it cost about 0.15 s of each worker's start-up. tests/test_cli.py
# checks that both ways agree.


def current_heads(engine: Engine) -> set[str]:
    """The revisions the database is at (empty if it has never been migrated)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return set()
        return set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def _ids(node: ast.expr | None) -> set[str]:
    value = ast.literal_eval(node) if node is not None else None
    if value is None:
        return set()
    return {value} if isinstance(value, str) else set(value)


def script_heads() -> set[str]:
    """Revisions that no other migration builds on, read from the migration files' `revision` and
    `down_revision` assignments (what Alembic's ScriptDirectory.get_heads() reports)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                if node.targets[0].id == "revision":
                    revisions |= _ids(node.value)
                elif node.targets[0].id == "down_revision":
                    parents |= _ids(node.value)
    return revisions - parents
