"""DST windows, verified_only, redaction and action-category overrides in reports."""

from __future__ import annotations

import hashlib
import hmac
import json

import pyarrow.parquet as pq
import pytest
from sqlalchemy import update

from compliance_reports.audit.event_stream import RedactionKeyError, digest_parquet
from compliance_reports.db.schema import audit_log
from compliance_reports.reports.builder import build_report
from compliance_reports_tests.reports.conftest import (
    GENERATED_AT,
    facts,
    golden_config,
    rows,
    section,
)
from compliance_reports_tests.reports.dataset import GOLDEN, load

DST_ROWS = [
    (1, "org-a", "2026-10-24T21:59:59Z", "usr-1", "fhir.patient.read", "Patient", "Patient/p1", "success", "PHI", {"patient_id": "p1"}),
    (2, "org-a", "2026-10-24T22:00:00Z", "usr-1", "fhir.patient.read", "Patient", "Patient/p1", "success", "PHI", {"patient_id": "p1"}),
    # 02:30 local twice: CEST (00:30Z) and, after the clocks go back, CET (01:30Z)
    (3, "org-a", "2026-10-25T00:30:00Z", "usr-1", "fhir.patient.read", "Patient", "Patient/p2", "success", "PHI", {"patient_id": "p2"}),
    (4, "org-a", "2026-10-25T01:30:00Z", "usr-2", "fhir.patient.read", "Patient", "Patient/p3", "success", "PHI", {"patient_id": "p3"}),
    (5, "org-a", "2026-10-25T10:00:00Z", "usr-2", "fhir.patient.read", "Patient", "Patient/p3", "success", "PHI", {"patient_id": "p3"}),
    # 23:30 local: in the 25th hour of the day (a 24-hour window would end at 22:00Z)
    (6, "org-a", "2026-10-25T22:30:00Z", "usr-2", "fhir.patient.read", "Patient", "Patient/p4", "success", "PHI", {"patient_id": "p4"}),
    (7, "org-a", "2026-10-25T23:00:00Z", "usr-2", "fhir.patient.read", "Patient", "Patient/p4", "success", "PHI", {"patient_id": "p4"}),
]


def test_dst_day_is_25_hours_and_counts_the_extra_hour(engine):
    load(engine, DST_ROWS)
    report = golden_config("hipaa_audit_trail", options={"weekend_is_after_hours": False})
    result = build_report(engine, engine, report, "2026-10-25", run_id=None, generated_at=GENERATED_AT)
    header = result.document["header"]
    assert header["window_start_utc"] == "2026-10-24T22:00:00Z"
    assert header["window_end_utc"] == "2026-10-25T23:00:00Z"
    assert header["window_start_local"] == "2026-10-25T00:00:00+02:00"
    assert header["window_end_local"] == "2026-10-26T00:00:00+01:00"
    assert header["window_hours"] == 25
    assert header["window_note"] == "This day is 25 hours long (daylight saving time ended)"
    assert result.event_count == 5  # ids 2..6
    after = result.document["data"]["after_hours"]
    # 20:00-06:00 local: 00:00-06:00 local is 7 real hours this morning (02:00-03:00 twice)
    assert after["intervals_utc"] == [["2026-10-24T22:00:00Z", "2026-10-25T05:00:00Z"],
                                      ["2026-10-25T19:00:00Z", "2026-10-25T23:00:00Z"]]
    assert after["events"] == 4  # ids 2, 3, 4 and 6; id 5 is 11:00 local
    finding = next(f for f in section(result.document, "anomalies")["findings"]
                   if f["code"] == "after_hours_access")
    assert finding["evidence_event_ids"] == [2, 3, 4, 6]


def test_dst_day_in_spring_is_23_hours(engine):
    report = golden_config("general_compliance")
    result = build_report(engine, engine, report, "2026-03-29", run_id=None, generated_at=GENERATED_AT)
    assert result.document["header"]["window_hours"] == 23
    assert result.document["header"]["window_note"] == (
        "This day is 23 hours long (daylight saving time started)")


def test_verified_only_excludes_tampered_and_unhashed_rows(engine):
    load(engine, GOLDEN)
    with engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.id == 17).values(outcome_description="edited"))
        conn.execute(update(audit_log).where(audit_log.c.id == 37).values(hash=None))
    report = golden_config("general_compliance", criteria={"verified_only": True})
    result = build_report(engine, engine, report, "2026-03-10", run_id=None, generated_at=GENERATED_AT)
    doc = result.document
    assert result.event_count == 26
    assert facts(doc, "totals")["Events"] == 26
    assert facts(doc, "scope")["Excluded (hash does not verify)"] == 2
    assert "verified_only" in section(doc, "scope")["description"]
    assert result.integrity_verdict == "BROKEN"
    # 17 (fhir.patient.read) and 37 (system.healthcheck) are gone from the aggregates too
    top = {r["action"]: r["events"] for r in rows(doc, "top_actions")}
    assert top["fhir.patient.read"] == 6
    assert "other" not in {r["category"] for r in rows(doc, "by_category")}


def test_redacted_export_uses_keyed_pseudonyms(engine, tmp_path):
    load(engine, GOLDEN)
    path = tmp_path / "events.parquet"
    report = golden_config("custom", criteria={"principal_ids": ["usr-2"]},
                           export={"redact_identifiers": True})
    result = build_report(engine, engine, report, "2026-03-10", run_id=None, generated_at=GENERATED_AT,
                          events_path=path, checkpoint_key=b"secret")
    pseudonym = "anon:" + hmac.new(b"secret", b"usr-2", hashlib.sha256).hexdigest()[:16]
    table = pq.read_table(path).to_pylist()
    assert [r["id"] for r in table] == [11, 12, 13, 14, 15, 19, 20]
    assert {r["principal_id"] for r in table} == {pseudonym}
    assert {r["details"] for r in table} == {None}
    assert table[0]["target_resource_id"] == "anon:" + hmac.new(
        b"secret", b"Observation/o2", hashlib.sha256).hexdigest()[:16]
    assert {r["principal_id"] for r in rows(result.document, "events")} == {pseudonym}
    assert digest_parquet(path) == result.events_sha256
    # without a key there is no pseudonym at all: an unkeyed hash of an id can be reversed
    with pytest.raises(RedactionKeyError, match="COMPLIANCE_CHECKPOINT_KEY"):
        build_report(engine, engine, report, "2026-03-10", run_id=None, generated_at=GENERATED_AT,
                     events_path=tmp_path / "unkeyed.parquet")
    assert not (tmp_path / "unkeyed.parquet").exists()


def test_action_category_override_moves_actions(engine):
    load(engine, GOLDEN)
    # system.healthcheck becomes "monitoring"; login and the authentication catch-all now only
    # cover failed-login-like actions named auth.fail* (none), so auth.login falls to "other"
    report = golden_config("general_compliance", options={
        "action_categories": {"login": ["auth.fail*"], "authentication": ["auth.fail*"],
                              "monitoring": ["system.*"]}})
    doc = build_report(engine, engine, report, "2026-03-10", run_id=None,
                       generated_at=GENERATED_AT).document
    categories = {r["category"]: r["events"] for r in rows(doc, "by_category")}
    assert "authentication" not in categories and "login" not in categories
    assert categories["monitoring"] == 1
    assert categories["other"] == 4
    assert "monitoring: system.*" in facts(doc, "scope")["Action categories"]


def test_redaction_also_covers_the_document(engine):
    load(engine, GOLDEN)
    report = golden_config("hipaa_audit_trail", export={"redact_identifiers": True})
    doc = build_report(engine, engine, report, "2026-03-10", run_id=None, generated_at=GENERATED_AT,
                       checkpoint_key=b"secret").document
    text = json.dumps({k: v for k, v in doc.items() if k != "header"})
    for identifier in ("usr-1", "usr-2", "usr-4", "adm-1", "Patient/p1", '"p1"'):
        assert identifier not in text, identifier
    pseudonym = "anon:" + hmac.new(b"secret", b"usr-1", hashlib.sha256).hexdigest()[:16]
    assert rows(doc, "phi_access_by_principal")[0]["principal_id"] == pseudonym
    assert rows(doc, "disclosures")[0]["recipient"] == "Dr X (Clinic Y)"
    assert "pseudonymised" in section(doc, "scope")["description"]
