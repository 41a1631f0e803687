"""stream_window on SQLite and PostgreSQL equals the per-row definitions on awkward rows."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq
import pytest
from sqlalchemy import insert

from compliance_reports.audit.event_stream import (
    EXPORT_COLUMNS,
    Redactor,
    canonical_line,
    digest_parquet,
    export_record,
    snapshot_connection,
    stream_window,
)
from compliance_reports.audit.hashing import row_hash, verify_chain
from compliance_reports.db.schema import audit_log

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
AWKWARD = ['plain', 'quote " and \\ backslash', "new\nline, cr\r, tab\t", "", None, "é Ω 😀 \u2028\u2029",
           "ctl \x01\x1f\x7f", "comma, \"quoted\", ,,", "\\N"]


def awkward_rows(n: int = 40) -> list[dict]:
    rows, prev = [], None
    for i in range(n):
        value = AWKWARD[i % len(AWKWARD)]
        row = {
            "timestamp": START + timedelta(seconds=i // 2, microseconds=(i % 3) * 1500),  # ties, micros
            "organization_id": "org-a", "principal_id": value, "action": f"act.{i % 4}",
            "target_resource_type": value if i % 2 else "Patient", "target_resource_id": value,
            "status": "success" if i % 5 else "failure", "outcome_description": value,
            "data_classification": "PHI" if i % 3 else None, "correlation_id": value,
            "details": None if i % 7 == 0 else {"z": [1, 2.5, value], "a": {"y": value, "b": True}, "é": i},
        }
        row["hash"] = row_hash(row) if i != 13 else "0" * 64  # row 13 tampered
        if i == 20:
            row["hash"] = None  # unhashed
        row["prev_hash"] = prev
        prev = row["hash"]
        rows.append(row)
    return rows


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request):
    engine = request.getfixturevalue("engine" if request.param == "sqlite" else "pg_engine")
    rows = awkward_rows()
    with engine.begin() as conn:
        for row in rows:  # one by one: ids follow chain order
            conn.execute(insert(audit_log).values(**row))
        conn.execute(insert(audit_log).values(**{**rows[0], "organization_id": "org-b"}))
    return engine


def read_back(engine) -> list[dict]:
    from sqlalchemy import select

    with engine.connect() as conn:
        q = select(audit_log).where(audit_log.c.organization_id == "org-a").order_by(
            audit_log.c.timestamp, audit_log.c.id)
        return [dict(r) for r in conn.execute(q).mappings()]


@pytest.mark.parametrize("redact", [False, True])
@pytest.mark.parametrize("verified_only", [False, True])
def test_stream_window_equals_the_row_by_row_definition(db, tmp_path, redact, verified_only):
    rows = read_back(db)
    redactor = Redactor(b"k") if redact else None
    ok = [bool(r["hash"]) and row_hash(r) == r["hash"] for r in rows]
    kept = [r for r, good in zip(rows, ok) if good or not verified_only]
    records = [export_record(r, redactor) for r in kept]
    expected_digest = hashlib.sha256(b"".join(canonical_line(r) for r in records)).hexdigest()
    path = tmp_path / "events.parquet"
    with snapshot_connection(db) as conn:
        outcome = stream_window(conn, "org-a", START, START + timedelta(days=1), events_path=path,
                                redactor=redactor, verified_only=verified_only, sample_limit=5,
                                batch_size=7)
    assert outcome.events_sha256 == expected_digest
    assert outcome.event_count == len(records) and outcome.rows_scanned == len(rows)
    assert outcome.chain == verify_chain(rows)
    assert outcome.chain.mismatched == 1 and outcome.chain.unhashed == 1
    assert outcome.unverified_ids == ([rows[13]["id"]] if verified_only else [])
    assert outcome.excluded_unverified == (2 if verified_only else 0)
    assert outcome.last_row_timestamp == rows[-1]["timestamp"]
    assert (outcome.first_row_id, outcome.first_row_prev_hash) == (rows[0]["id"], None)
    assert outcome.sample == records[:5]
    assert digest_parquet(path) == expected_digest
    table = pq.read_table(path).to_pylist()
    assert [{k: r[k] for k in EXPORT_COLUMNS if k != "timestamp"} for r in table] == [
        {k: r[k] for k in EXPORT_COLUMNS if k != "timestamp"} for r in records]


def test_criteria_are_decided_by_the_database(db):
    rows = read_back(db)
    with snapshot_connection(db) as conn:
        outcome = stream_window(conn, "org-a", START, START + timedelta(days=1),
                                criteria_condition=audit_log.c.status == "failure")
    expected = [export_record(r) for r in rows if r["status"] == "failure"]
    assert outcome.event_count == len(expected) > 0
    assert outcome.events_sha256 == hashlib.sha256(b"".join(canonical_line(r) for r in expected)).hexdigest()
    assert outcome.rows_scanned == len(rows)
