"""The migrations build exactly the schema the models declare, on both databases: a model change without its
migration (or the reverse) fails here, not on a production database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from screening.tables import Base


def test_the_migrated_schema_is_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        # Each showing of an assessment finds the screen's last record by this index (migration 0007).
        indexes = {ix["name"]: ix["column_names"] for ix in inspect(conn).get_indexes("assessments")}
    assert indexes == {"ix_assessments_screen_id_id": ["screen_id", "id"]}
