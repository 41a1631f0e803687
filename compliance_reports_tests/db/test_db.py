"""Migrations create the declared schema on SQLite and PostgreSQL, and are idempotent."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from compliance_reports.db import migrate
from compliance_reports.db.engine import make_engine
from compliance_reports.db.schema import app_metadata, audit_log, audit_metadata
from compliance_reports.settings import load_settings, normalise_db_url

APP_TABLES = {
    "report_configs", "destinations", "report_templates", "schedule_requests", "deliveries",
    "integrity_checkpoints", "retention_log", "stored_files",
}


def _schema_diff(engine, metadata):
    ours = set(metadata.tables)

    def include_name(name, type_, parent_names):
        # The other logical database's tables (and Alembic's version tables) are not ours.
        if type_ == "table":
            return name in ours
        return parent_names.get("table_name", None) in ours if parent_names else True

    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": False, "include_name": include_name}
        )
        return compare_metadata(ctx, metadata)


def _check_migrated(engine):
    states = migrate.upgrade_all(engine, engine)
    assert all(s.up_to_date for s in states)
    tables = set(sa.inspect(engine).get_table_names())
    assert APP_TABLES | {"audit_log"} <= tables
    indexes = {ix["name"] for ix in sa.inspect(engine).get_indexes("audit_log")}
    assert "ix_audit_log_org_timestamp" in indexes
    assert _schema_diff(engine, app_metadata) == []
    assert _schema_diff(engine, audit_metadata) == []
    # Second run is a no-op.
    assert [s.current for s in migrate.upgrade_all(engine, engine)] == [s.current for s in states]


def _roundtrip_timestamp(engine):
    ts = datetime(2026, 3, 29, 0, 59, 59, 999000, tzinfo=timezone(timedelta(hours=1)))
    with engine.begin() as conn:
        conn.execute(sa.insert(audit_log).values(
            timestamp=ts, action="auth.login", status="success", organization_id="org-1",
            details={"session_context": {"ip_address": "10.0.0.1"}, "name": "Zoë"},
        ))
        row = conn.execute(sa.select(audit_log)).mappings().one()
    assert row["timestamp"] == ts and row["timestamp"].tzinfo is not None
    assert row["details"]["name"] == "Zoë"


def test_sqlite_migrations(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'c.db'}")
    _check_migrated(engine)
    _roundtrip_timestamp(engine)


@pytest.mark.postgres
def test_postgres_migrations(pg_database):
    engine = make_engine(pg_database())
    try:
        _check_migrated(engine)
        _roundtrip_timestamp(engine)
        assert engine.dialect.driver == "psycopg2"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_separate_audit_database_adopts_an_existing_source_table(pg_database):
    app = make_engine(pg_database())
    audit = make_engine(pg_database())
    try:
        with audit.begin() as conn:  # the source system's table, without our additions
            conn.execute(sa.text(
                "CREATE TABLE audit_log (id serial primary key, timestamp timestamptz not null, "
                "organization_id varchar(255), action varchar(255) not null, status varchar(32) "
                "not null, hash varchar(128), details jsonb)"
            ))
            conn.execute(sa.text(
                "INSERT INTO audit_log (timestamp, organization_id, action, status) "
                "VALUES (now(), 'org-1', 'auth.login', 'success')"
            ))
        migrate.upgrade_all(app, audit)
        columns = {c["name"] for c in sa.inspect(audit).get_columns("audit_log")}
        assert "prev_hash" in columns
        assert "report_configs" not in sa.inspect(audit).get_table_names()
        assert APP_TABLES <= set(sa.inspect(app).get_table_names())
        with audit.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar() == 1
    finally:
        app.dispose()
        audit.dispose()


def test_settings_default_to_a_project_local_sqlite_file(tmp_path):
    settings = load_settings({"COMPLIANCE_DATA_DIR": str(tmp_path)})
    assert settings.compliance_db_url == f"sqlite:///{tmp_path / 'compliance.db'}"
    assert settings.audit_db_url == settings.compliance_db_url
    split = load_settings({"COMPLIANCE_DB_URL": "postgresql://u@h/app", "AUDIT_DB_URL": "postgres://u@h/audit"})
    assert split.compliance_db_url == "postgresql+psycopg2://u@h/app"
    assert split.audit_db_url == "postgresql+psycopg2://u@h/audit"
    assert normalise_db_url("sqlite:///x.db") == "sqlite:///x.db"


def _ledger_rows_survive_c0004(engine):
    """Rows written under the old key keep their ids and gain the fingerprint columns."""
    from compliance_reports.db.types import UTCDateTime
    from compliance_reports.delivery import ledger

    migrate.upgrade("audit", engine)
    migrate.upgrade("app", engine, "c0002")
    created = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
    def table(*extra):
        names = ("id", "report_id", "organization_id", "period", "artifact_sha256", "destination",
                 "channel", "recipient", "status", "attempts", "max_attempts", *extra)
        return sa.table("deliveries", *[sa.column(c) for c in names],
                        sa.column("created_at", UTCDateTime), sa.column("updated_at", UTCDateTime))

    old_table = table()
    common = {"report_id": "r", "organization_id": "o", "period": "2026-11-23", "status": "sent",
              "attempts": 1, "max_attempts": 5, "created_at": created, "updated_at": created}
    report_id = ledger.delivery_id("r", "2026-11-23", "ab" * 32, "hook", "https://x.test/h")
    alert_id = ledger.delivery_id("r", "2026-11-23", "failure:run", "mail", "alert:a@x.test")
    with engine.begin() as conn:
        conn.execute(sa.insert(old_table), [
            {**common, "id": report_id, "artifact_sha256": "ab" * 32, "destination": "hook",
             "channel": "webhook", "recipient": "https://x.test/h"},
            {**common, "id": alert_id, "artifact_sha256": "failure:run", "destination": "mail",
             "channel": "email", "recipient": "alert:a@x.test"},
        ])
    _check_migrated(engine)
    rows = {r["id"]: r for r in ledger.list_rows(engine)}
    assert rows[report_id]["content_fingerprint"] == "ab" * 32 and rows[report_id]["purpose"] == "delivery"
    assert rows[alert_id]["purpose"] == "alert" and rows[alert_id]["sequence"] == 0
    assert rows[report_id]["give_up_at"] == created + timedelta(hours=24)
    assert rows[report_id]["possible_duplicate"] is False and rows[report_id]["status"] == "sent"
    # the new unique key holds: the same identity cannot be written twice
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.insert(table("content_fingerprint", "sequence")),
                     {**common, "id": "another-id", "artifact_sha256": "cd" * 32, "destination": "hook",
                      "channel": "webhook", "recipient": "https://x.test/h",
                      "content_fingerprint": "ab" * 32, "sequence": 0})


def test_sqlite_ledger_migration_keeps_rows(tmp_path):
    _ledger_rows_survive_c0004(make_engine(f"sqlite:///{tmp_path / 'old.db'}"))


@pytest.mark.postgres
def test_postgres_ledger_migration_keeps_rows(pg_database):
    engine = make_engine(pg_database())
    try:
        _ledger_rows_survive_c0004(engine)
    finally:
        engine.dispose()
