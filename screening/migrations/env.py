"""Alembic environment: the URL and connection come from screening's Settings or the caller."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from screening.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from screening.config import Settings
    from screening.db import make_engine

    engine = make_engine(Settings())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
