"""audit chain append as one server-side call on PostgreSQL; merges the 0002, 0004 and 0005 branches

Revision ID: 0006
Revises: 0002, 0004, 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = ("0002", "0004", "0005")
branch_labels = None
depends_on = None

# Appending to the hash chain needs the chain's last hash, read under a lock that orders appends across
# every connection of every instance. Done from the client, that lock is held across three round trips
# (lock, read, insert) until commit, and every request of every instance queues on it. Done here, it is
# held for the server's few microseconds, and the client sends one statement.
#
# The hash is the one `screening.audit.service` computes: sha256 of the entry's canonical JSON, in which
# the previous hash is one string value. The client sends that JSON split around the previous hash
# (p_head, p_tail); the function joins them with the hash it reads under the lock. `screening audit
# verify` recomputes every hash in Python, so a difference between the two would be caught.
#
# In READ COMMITTED each statement of a VOLATILE function takes a fresh snapshot, so the read after the
# lock sees every append committed before the lock was granted.
_PG_APPEND = """
CREATE OR REPLACE FUNCTION audit_append(
    p_at timestamptz, p_actor_id integer, p_actor varchar, p_role varchar, p_action varchar,
    p_record_type varchar, p_record_id varchar, p_source_ip varchar, p_detail json,
    p_head text, p_tail text
) RETURNS varchar AS $$
DECLARE
    prev varchar;
    h varchar;
BEGIN
    PERFORM pg_advisory_xact_lock(7305001);
    SELECT hash INTO prev FROM audit_entries ORDER BY id DESC LIMIT 1;
    prev := coalesce(prev, repeat('0', 64));
    h := encode(sha256(convert_to(p_head || prev || p_tail, 'UTF8')), 'hex');
    INSERT INTO audit_entries (at, actor_id, actor, role, action, record_type, record_id, source_ip, detail,
                               prev_hash, hash)
    VALUES (p_at, p_actor_id, p_actor, p_role, p_action, p_record_type, p_record_id, p_source_ip, p_detail,
            prev, h);
    RETURN h;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_APPEND)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_append(timestamptz, integer, varchar, varchar, varchar, varchar, "
                   "varchar, varchar, json, text, text)")
