"""The window read once: aggregates read the temporary window table, give the documents
``audit_log`` gives, leave nothing behind and never touch an ordinary table of that name."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select, text

from compliance_reports.audit.event_stream import snapshot_connection
from compliance_reports.db.schema import audit_log
from compliance_reports.reports.builder import build_report
from compliance_reports.reports.window_rows import TABLE_NAME, WORK_MEM, NotInWindowRows, WindowRows
from compliance_reports_tests.reports.conftest import GENERATED_AT, golden_config

PERIOD = "2026-03-10"
# report type -> statements at least that read the window table (GDPR's read details mostly)
TYPES = {"hipaa_audit_trail": 12, "gdpr_processing_activities": 3, "general_compliance": 3}


def _build(engine, report_type, **overrides):
    return build_report(engine, engine, golden_config(report_type, **overrides), PERIOD,
                        run_id=None, generated_at=GENERATED_AT).document


def _temp_table_left(engine) -> bool:
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            return conn.execute(text(f"SELECT to_regclass('pg_temp.{TABLE_NAME}')")).scalar() is not None
        return conn.execute(text("SELECT count(*) FROM sqlite_temp_master WHERE name = :n"),
                            {"n": TABLE_NAME}).scalar() > 0


@pytest.mark.parametrize("report_type", TYPES)
def test_aggregates_read_the_window_table_and_drop_it(golden_db, report_type):
    statements: list[str] = []

    @event.listens_for(golden_db, "before_cursor_execute")
    def _seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    document = _build(golden_db, report_type)
    event.remove(golden_db, "before_cursor_execute", _seen)
    creates = [s for s in statements if s.startswith(f"CREATE TEMPORARY TABLE {TABLE_NAME}")]
    assert len(creates) == 1                                  # the window is read once
    reading = [s for s in statements if f"FROM {TABLE_NAME}" in s]
    assert len(reading) >= TYPES[report_type]
    assert not _temp_table_left(golden_db)
    # the action map comes from the streaming pass: no statement reads the actions again
    assert not any("DISTINCT audit_log.action" in s for s in statements)
    if report_type == "hipaa_audit_trail":  # the after-hours flag: a column, not the time ranges
        assert "after_hours" in creates[0]
        assert sum(f"{TABLE_NAME}.after_hours = " in s for s in reading) >= 3
    assert document["header"]["event_count"] > 0


def test_an_ordinary_table_of_the_same_name_is_neither_read_nor_dropped(golden_db):
    before = _build(golden_db, "hipaa_audit_trail")
    with golden_db.begin() as conn:
        conn.execute(text(f"CREATE TABLE {TABLE_NAME} (id INTEGER, note VARCHAR(20))"))
        conn.execute(text(f"INSERT INTO {TABLE_NAME} VALUES (1, 'keep me')"))
    after = _build(golden_db, "hipaa_audit_trail")
    assert after == before
    with golden_db.connect() as conn:
        assert conn.execute(text(f"SELECT note FROM {TABLE_NAME}")).scalar_one() == "keep me"


def test_criteria_and_category_overrides_give_the_same_documents_on_both_backends(engine, pg_engine):
    from compliance_reports_tests.reports.dataset import GOLDEN, load

    overrides = {
        "criteria": {"statuses": ["success", "failure"], "actions": ["fhir.*", "auth.*", "phi.*"]},
        "options": {"top_n": 5, "failed_login_threshold": 1, "denied_access_threshold": 1,
                    "bulk_access_threshold": 2, "distinct_patients_threshold": 1,
                    "action_categories": {"login": ["auth.log*"], "phi_read": ["fhir.patient.*"]}},
    }
    documents = []
    for db in (engine, pg_engine):
        load(db, GOLDEN)
        documents.append(_build(db, "hipaa_audit_trail", **overrides))
    assert documents[0] == documents[1]
    assert documents[0]["header"]["event_count"] > 0


def test_a_statement_needing_details_is_refused_by_the_table(golden_db):
    c = audit_log.c
    with snapshot_connection(golden_db) as conn:
        rows = WindowRows.create(conn, [c.organization_id == "org-a"], c.action)
        adapted = rows.adapt(select(c.principal_id, c.id).where(c.status == "failure"))
        assert TABLE_NAME in str(adapted) and "audit_log" not in str(adapted)
        with pytest.raises(NotInWindowRows):
            rows.adapt(select(c.id).where(c.details["purpose"].as_string() == "x"))
        rows.drop(conn)


def test_the_table_compares_strings_by_bytes_in_memory_on_postgresql(pg_engine):
    """Collation "C" columns: the distinct counts and GROUP BYs sort with memcmp, not the
    database collation; the sorts get work_mem enough to stay out of temporary files; the
    table has statistics."""
    from compliance_reports_tests.reports.dataset import GOLDEN, load

    load(pg_engine, GOLDEN)
    c = audit_log.c
    with snapshot_connection(pg_engine) as conn:
        WindowRows.create(conn, [c.organization_id == "org-a"], c.action)
        collations = dict(conn.execute(text(
            "SELECT a.attname, coll.collname FROM pg_attribute a "
            "JOIN pg_collation coll ON coll.oid = a.attcollation "
            f"WHERE a.attrelid = 'pg_temp.{TABLE_NAME}'::regclass AND a.attnum > 0")).all())
        work_mem = conn.execute(text("SHOW work_mem")).scalar_one()
        analyzed = conn.execute(text(
            f"SELECT count(*) FROM pg_stats WHERE tablename = '{TABLE_NAME}'")).scalar_one()
    assert collations == {name: "C" for name in (
        "principal_id", "action", "status", "data_classification", "target_resource_type",
        "target_resource_id", "category", "patient_id")}
    assert work_mem == WORK_MEM
    assert analyzed > 0  # the planner knows the table's size: hashed GROUP BYs and DISTINCTs


def test_hipaa_groups_by_principal_once_for_phi_and_once_for_authentication(golden_db):
    statements: list[str] = []

    @event.listens_for(golden_db, "before_cursor_execute")
    def _seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    _build(golden_db, "hipaa_audit_trail")
    event.remove(golden_db, "before_cursor_execute", _seen)
    by_principal = [s for s in statements
                    if "GROUP BY" in s and f"{TABLE_NAME}.principal_id" in s.split("GROUP BY")[1]]
    # the PHI figures (table, after hours, distinct patients, denied access, chart), and the
    # authentication kinds with the failed logins (principals, over the threshold)
    assert len(by_principal) == 2
    # distinct principals and patients: counted as DISTINCT rows (hashed), not count(DISTINCT)
    # per group (a sort per group)
    assert not any("count(DISTINCT" in s for s in statements if f"FROM {TABLE_NAME}" in s)
