"""The migrations build exactly the schema the models declare, on both databases: a model change without its
migration (or the reverse) fails here, not on a production database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from screening import migrate
from screening.config import Settings
from screening.db import make_engine
from screening.tables import Base
from tests.conftest import _postgres_database


def test_the_migrated_schema_is_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        # Each showing of an assessment finds the screen's last record by this index (migration 0007).
        indexes = {ix["name"]: ix["column_names"] for ix in inspect(conn).get_indexes("assessments")}
    assert indexes == {"ix_assessments_screen_id_id": ["screen_id", "id"]}


def _fresh(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own, on the backend `database_url` is on."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        yield from _postgres_database()


def test_migration_0007_finds_the_index_built_beforehand(database_url: str, tmp_path: Path) -> None:
    """Where the assessments table is large, an operator builds 0007's index CONCURRENTLY before migrating (see the
    migration): the migration then finds it and carries on."""
    for url in _fresh(database_url, tmp_path):
        engine = make_engine(Settings(database_url=url, data_dir=tmp_path))
        try:
            migrate.upgrade(engine, "0006")
            if engine.dialect.name == "postgresql":
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # as CONCURRENTLY needs
                    conn.execute(text("CREATE INDEX CONCURRENTLY ix_assessments_screen_id_id ON assessments (screen_id, id)"))
            else:
                with engine.begin() as conn:
                    conn.execute(text("CREATE INDEX ix_assessments_screen_id_id ON assessments (screen_id, id)"))
            assert "ix_assessments_screen_id_id" in {ix["name"] for ix in inspect(engine).get_indexes("assessments")}
            migrate.upgrade(engine)
            with engine.connect() as conn:
                assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        finally:
            engine.dispose()
