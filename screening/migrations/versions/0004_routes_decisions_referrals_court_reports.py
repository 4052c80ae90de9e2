"""Route and need decisions, referrals and the court report log (issue 4)

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-23 01:45:38.239061
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('court_reports',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('screen_id', sa.String(length=36), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('report_version', sa.String(length=32), nullable=False),
    sa.Column('rules_version', sa.String(length=32), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('practitioner', sa.String(length=128), nullable=False),
    sa.Column('generated_by_id', sa.Integer(), nullable=False),
    sa.Column('generated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['generated_by_id'], ['users.id'], name=op.f('fk_court_reports_generated_by_id_users')),
    sa.ForeignKeyConstraint(['screen_id'], ['screens.id'],
                            name=op.f('fk_court_reports_screen_id_screens'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_court_reports'))
    )
    with op.batch_alter_table('court_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_court_reports_screen_id'), ['screen_id'], unique=False)

    op.create_table('need_decisions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('screen_id', sa.String(length=36), nullable=False),
    sa.Column('domain', sa.String(length=64), nullable=False),
    sa.Column('proposed', sa.Boolean(), nullable=False),
    sa.Column('need', sa.Boolean(), nullable=False),
    sa.Column('reason_code', sa.String(length=32), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rules_version', sa.String(length=32), nullable=False),
    sa.Column('rules_sha256', sa.String(length=64), nullable=False),
    sa.Column('directory_version', sa.String(length=32), nullable=False),
    sa.Column('directory_sha256', sa.String(length=64), nullable=False),
    sa.Column('model_version', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_need_decisions_decided_by_id_users')),
    sa.ForeignKeyConstraint(['screen_id'], ['screens.id'],
                            name=op.f('fk_need_decisions_screen_id_screens'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_need_decisions'))
    )
    with op.batch_alter_table('need_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_need_decisions_screen_id'), ['screen_id'], unique=False)

    op.create_table('referrals',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('screen_id', sa.String(length=36), nullable=False),
    sa.Column('route', sa.String(length=64), nullable=False),
    sa.Column('urgency', sa.String(length=16), nullable=False),
    sa.Column('service_name', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('made_on', sa.Date(), nullable=False),
    sa.Column('outcome_on', sa.Date(), nullable=True),
    sa.Column('history', sa.JSON(), nullable=False),
    sa.Column('made_by_id', sa.Integer(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['made_by_id'], ['users.id'], name=op.f('fk_referrals_made_by_id_users')),
    sa.ForeignKeyConstraint(['screen_id'], ['screens.id'],
                            name=op.f('fk_referrals_screen_id_screens'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_referrals_updated_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referrals'))
    )
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_referrals_screen_id'), ['screen_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_referrals_status'), ['status'], unique=False)

    op.create_table('route_decisions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('screen_id', sa.String(length=36), nullable=False),
    sa.Column('route', sa.String(length=64), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('proposed', sa.Boolean(), nullable=False),
    sa.Column('proposed_urgency', sa.String(length=16), nullable=True),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('reason_code', sa.String(length=32), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rules_version', sa.String(length=32), nullable=False),
    sa.Column('rules_sha256', sa.String(length=64), nullable=False),
    sa.Column('directory_version', sa.String(length=32), nullable=False),
    sa.Column('directory_sha256', sa.String(length=64), nullable=False),
    sa.Column('model_version', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_route_decisions_decided_by_id_users')),
    sa.ForeignKeyConstraint(['screen_id'], ['screens.id'],
                            name=op.f('fk_route_decisions_screen_id_screens'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_route_decisions'))
    )
    with op.batch_alter_table('route_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_route_decisions_screen_id'), ['screen_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('route_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_route_decisions_screen_id'))

    op.drop_table('route_decisions')
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referrals_status'))
        batch_op.drop_index(batch_op.f('ix_referrals_screen_id'))

    op.drop_table('referrals')
    with op.batch_alter_table('need_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_need_decisions_screen_id'))

    op.drop_table('need_decisions')
    with op.batch_alter_table('court_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_court_reports_screen_id'))

    op.drop_table('court_reports')
