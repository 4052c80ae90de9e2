"""model files: a promoted model's artifact kept in the database with its record

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# A promoted model's files were kept only in the data folder of the instance that promoted it, with its record in
# the database: every other instance needed the same folder (one volume shared by all), or it refused to start
# once the promotion was active. The files now go into the database with the record, and each instance writes
# its own copy out at start (screening.model.promotion). Models promoted before keep being read from the data
# folder until they are promoted again, which stores their files.


def upgrade() -> None:
    op.create_table(
        "model_files",
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["model_version_id"], ["model_versions.id"],
                                name=op.f("fk_model_files_model_version_id_model_versions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("model_version_id", "name", name=op.f("pk_model_files")),
    )


def downgrade() -> None:
    op.drop_table("model_files")
