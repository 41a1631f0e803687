"""Application tables: configurations, destinations, templates, requests, ledger, checkpoints.

Revision ID: c0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from compliance_reports.db.types import BigIntPK, JSONDoc, UTCDateTime

revision = "c0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_configs",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("organization_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("report_type", sa.String(64), nullable=False),
        sa.Column("frequency", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("config", JSONDoc, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(255)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "ix_report_configs_frequency_enabled", "report_configs", ["frequency", "enabled"]
    )
    op.create_table(
        "destinations",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("config", JSONDoc, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "report_templates",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("config", JSONDoc, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "schedule_requests",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("report_id", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("period", sa.String(10)),
        sa.Column("requested_by", sa.String(255)),
        sa.Column("requested_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("processed_at", UTCDateTime),
        sa.Column("result", sa.Text),
    )
    op.create_index("ix_schedule_requests_status_id", "schedule_requests", ["status", "id"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("report_id", sa.String(128), nullable=False),
        sa.Column("organization_id", sa.String(255), nullable=False),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("destination", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("lease_expires_at", UTCDateTime),
        sa.Column("next_attempt_at", UTCDateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("provider_response", sa.Text),
        sa.Column("artifact_location", sa.Text),
        sa.Column("run_id", sa.String(64)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime),
        sa.UniqueConstraint(
            "report_id", "period", "artifact_sha256", "destination", "recipient",
            name="uq_deliveries_once",
        ),
    )
    op.create_index("ix_deliveries_status_next", "deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "integrity_checkpoints",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("organization_id", sa.String(255), nullable=False),
        sa.Column("window_start", UTCDateTime, nullable=False),
        sa.Column("window_end", UTCDateTime, nullable=False),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("last_event_id", sa.String(64)),
        sa.Column("last_event_timestamp", UTCDateTime),
        sa.Column("last_hash", sa.String(128)),
        sa.Column("key_id", sa.String(64)),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index(
        "ix_integrity_checkpoints_org", "integrity_checkpoints", ["organization_id", "window_end"]
    )


def downgrade() -> None:
    for table in (
        "integrity_checkpoints", "deliveries", "schedule_requests",
        "report_templates", "destinations", "report_configs",
    ):
        op.drop_table(table)
