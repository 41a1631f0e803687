"""Table definitions (SQLAlchemy Core).

Two metadata objects because the two logical databases may be different servers:
`audit_metadata` holds the source system's `audit_log` (kept with its column names so an
existing deployment can point at its own table); `app_metadata` holds this application's tables.
The Alembic migrations under `db/migrations` create exactly these tables.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from compliance_reports.db.types import BigIntPK, JSONDoc, UTCDateTime

audit_metadata = MetaData()
app_metadata = MetaData()

audit_log = Table(
    "audit_log",
    audit_metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("timestamp", UTCDateTime, nullable=False),
    Column("ttl", String(64)),
    Column("principal_id", String(255)),
    Column("organization_id", String(255)),
    Column("action", String(255), nullable=False),
    Column("target_resource_type", String(255)),
    Column("target_resource_id", String(255)),
    Column("status", String(32), nullable=False),
    Column("outcome_description", Text),
    Column("hash", String(128)),
    Column("hash_algorithm", String(32)),
    Column("event_version", String(32)),
    Column("correlation_id", String(255)),
    Column("data_classification", String(32)),
    Column("retention_policy", String(64)),
    Column("processing_latency", Integer),
    Column("archived_at", UTCDateTime),
    Column("details", JSONDoc),
    Column("prev_hash", String(128)),
    Index("ix_audit_log_org_timestamp", "organization_id", "timestamp"),
)

report_configs = Table(
    "report_configs",
    app_metadata,
    Column("id", String(128), primary_key=True),
    Column("organization_id", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("report_type", String(64), nullable=False),
    # Denormalised from `config` so a schedule tick selects its reports with one indexed query.
    Column("frequency", String(16), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("config", JSONDoc, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_by", String(255)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_report_configs_frequency_enabled", "frequency", "enabled"),
)

destinations = Table(
    "destinations",
    app_metadata,
    Column("name", String(128), primary_key=True),
    Column("type", String(16), nullable=False),
    Column("config", JSONDoc, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

report_templates = Table(
    "report_templates",
    app_metadata,
    Column("name", String(128), primary_key=True),
    Column("config", JSONDoc, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

schedule_requests = Table(
    "schedule_requests",
    app_metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("report_id", String(128), nullable=False),
    Column("action", String(16), nullable=False),  # schedule | unschedule | run_now
    Column("period", String(10)),
    Column("requested_by", String(255)),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # pending | done | failed
    Column("processed_at", UTCDateTime),
    Column("result", Text),
    Index("ix_schedule_requests_status_id", "status", "id"),
)

deliveries = Table(
    "deliveries",
    app_metadata,
    # Deterministic id derived from the identity below: it is also the webhook-id,
    # Idempotency-Key and Message-ID, so it must not change between attempts.
    Column("id", String(64), primary_key=True),
    Column("report_id", String(128), nullable=False),
    Column("organization_id", String(255), nullable=False),
    Column("period", String(10), nullable=False),
    # The manifest sha256 of the stored set this row sends (what the recipient can check).
    Column("artifact_sha256", String(64), nullable=False),
    # The document's content fingerprint (reports/document.py): the identity of what is sent.
    Column("content_fingerprint", String(64), nullable=False),
    # 0 for the delivery of this content; n >= 1 for the n-th later row of the same content and
    # recipient (a deliberate redelivery, or a re-issue of content sent before a newer one).
    Column("sequence", Integer, nullable=False),
    Column("purpose", String(16), nullable=False),  # delivery | reissue | redelivery | alert
    Column("supersedes_run_id", String(64)),
    Column("supersedes_sha256", String(64)),
    Column("destination", String(128), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("recipient", String(512), nullable=False),
    Column("status", String(16), nullable=False),  # pending | sending | sent | failed | unknown | dead
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),  # the in-run budget of the destination
    Column("give_up_at", UTCDateTime),  # failing after this time makes the row dead
    Column("lease_expires_at", UTCDateTime),
    Column("next_attempt_at", UTCDateTime),
    # The attempt that reached the point of no return (request or message data sent).
    Column("transmit_attempt", Integer),
    # Some attempt's outcome was unknown: the receiver may hold a copy more than the ledger says.
    Column("possible_duplicate", Boolean, nullable=False),
    Column("last_error", Text),
    Column("provider_response", Text),
    Column("artifact_location", Text),
    Column("run_id", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    UniqueConstraint(
        "report_id", "period", "content_fingerprint", "destination", "recipient", "sequence",
        name="uq_deliveries_identity",
    ),
    Index("ix_deliveries_status_next", "status", "next_attempt_at"),
    Index("ix_deliveries_report_period", "report_id", "period"),
)

integrity_checkpoints = Table(
    "integrity_checkpoints",
    app_metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("organization_id", String(255), nullable=False),
    Column("window_start", UTCDateTime, nullable=False),
    Column("window_end", UTCDateTime, nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("last_event_id", String(64)),
    Column("last_event_timestamp", UTCDateTime),
    Column("last_hash", String(128)),
    Column("key_id", String(64)),
    Column("signature", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_integrity_checkpoints_org", "organization_id", "window_end"),
)

retention_log = Table(
    "retention_log",
    app_metadata,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("removed_at", UTCDateTime, nullable=False),
    Column("kind", String(32), nullable=False),  # artifact | destination_object | dagster_run
    Column("location", Text, nullable=False),
    Column("run_id", String(64)),
    Index("ix_retention_log_removed_at", "removed_at"),
)

stored_files = Table(
    "stored_files",
    app_metadata,
    # Every file this project wrote to the artifact store or a storage destination. Retention
    # deletes only files listed here (and only while their content is the recorded one).
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # artifact | destination
    Column("owner", String(128), nullable=False),  # destination name; "" for the artifact store
    Column("location", Text, nullable=False),  # absolute local path or s3://bucket/key
    Column("sha256", String(64)),
    Column("size", BigInteger),
    Column("stored_at", UTCDateTime, nullable=False),
    UniqueConstraint("kind", "owner", "location", name="uq_stored_files_location"),
    Index("ix_stored_files_owner_stored_at", "kind", "owner", "stored_at"),
)
