"""audit_log: create it, or adopt an existing source-system table.

An existing deployment's table keeps its rows; only the hash-chain column and the
(organization_id, timestamp) index are added when missing.

Revision ID: a0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from compliance_reports.db.types import BigIntPK, JSONDoc, UTCDateTime

revision = "a0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("audit_log"):
        op.create_table(
            "audit_log",
            sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
            sa.Column("timestamp", UTCDateTime, nullable=False),
            sa.Column("ttl", sa.String(64)),
            sa.Column("principal_id", sa.String(255)),
            sa.Column("organization_id", sa.String(255)),
            sa.Column("action", sa.String(255), nullable=False),
            sa.Column("target_resource_type", sa.String(255)),
            sa.Column("target_resource_id", sa.String(255)),
            sa.Column("status", sa.String(32), nullable=False),
            sa.Column("outcome_description", sa.Text),
            sa.Column("hash", sa.String(128)),
            sa.Column("hash_algorithm", sa.String(32)),
            sa.Column("event_version", sa.String(32)),
            sa.Column("correlation_id", sa.String(255)),
            sa.Column("data_classification", sa.String(32)),
            sa.Column("retention_policy", sa.String(64)),
            sa.Column("processing_latency", sa.Integer),
            sa.Column("archived_at", UTCDateTime),
            sa.Column("details", JSONDoc),
            sa.Column("prev_hash", sa.String(128)),
        )
    else:
        columns = {c["name"] for c in inspector.get_columns("audit_log")}
        if "prev_hash" not in columns:
            op.add_column("audit_log", sa.Column("prev_hash", sa.String(128)))
    indexes = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("audit_log")}
    if "ix_audit_log_org_timestamp" not in indexes:
        op.create_index("ix_audit_log_org_timestamp", "audit_log", ["organization_id", "timestamp"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_org_timestamp", table_name="audit_log")
