"""The after-hours condition in SQL: the same rows on SQLite (OR-ed ranges) and PostgreSQL (one
``width_bucket`` search per row), every interval half-open."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from compliance_reports.db.schema import audit_log
from compliance_reports.reports.hipaa import in_intervals
from compliance_reports_tests.reports.dataset import load, ts

A, OK, P = "org-x", "success", "PHI"
INTERVALS = [(ts("2026-03-10T00:00:00Z"), ts("2026-03-10T06:00:00Z")),
             (ts("2026-03-10T18:00:00Z"), ts("2026-03-11T06:00:00Z"))]
US = timedelta(microseconds=1)
# instant -> inside an interval
CASES = {
    INTERVALS[0][0] - US: False, INTERVALS[0][0]: True, INTERVALS[0][1] - US: True,
    INTERVALS[0][1]: False, ts("2026-03-10T12:00:00Z"): False, INTERVALS[1][0]: True,
    ts("2026-03-11T00:00:00Z"): True, INTERVALS[1][1] - US: True, INTERVALS[1][1]: False,
    ts("2026-03-12T00:00:00Z"): False,
}


def test_rows_inside_the_intervals_on_both_backends(golden_db):
    instants = list(CASES)
    load(golden_db, [(10_000 + i, A, at, "usr-1", "fhir.patient.read", "Patient", "Patient/p1", OK, P, {})
                     for i, at in enumerate(instants)])
    c = audit_log.c
    with golden_db.connect() as conn:
        inside = set(conn.execute(select(c.id).where(c.organization_id == A,
                                                     in_intervals(INTERVALS))).scalars())
    assert {instants[row_id - 10_000] for row_id in inside} == {at for at, yes in CASES.items() if yes}


def test_postgresql_searches_the_bounds_once_instead_of_testing_every_range():
    sql = str(in_intervals(INTERVALS).compile(dialect=postgresql.dialect()))
    assert "width_bucket(audit_log.timestamp, ARRAY[" in sql and " OR " not in sql
