"""assessments: index (screen_id, id), for the screen's last record

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Each showing of an assessment looks up the screen's last record, and records a new one only where what it shows
# differs (screening.model.assessments). The index on screen_id alone left PostgreSQL to sort a screen's records,
# or to walk the primary key back through every other screen's; (screen_id, id) finds the last one directly. It
# replaces the old index, which it covers.
#
# Building it holds off writes to the table, and the instances still serving the release before write a row per
# showing of an assessment. Where the table is large, build it first without that lock, and this step finds it:
#   CREATE INDEX CONCURRENTLY ix_assessments_screen_id_id ON assessments (screen_id, id);


def upgrade() -> None:
    op.create_index("ix_assessments_screen_id_id", "assessments", ["screen_id", "id"], if_not_exists=True)
    op.drop_index("ix_assessments_screen_id", table_name="assessments")


def downgrade() -> None:
    op.create_index("ix_assessments_screen_id", "assessments", ["screen_id"])
    op.drop_index("ix_assessments_screen_id_id", table_name="assessments")
