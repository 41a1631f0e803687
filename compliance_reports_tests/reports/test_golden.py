"""Golden reports: every figure below was derived by hand from dataset.GOLDEN.

Each test runs on SQLite and on PostgreSQL (``golden_db``); ``test_backends_agree`` builds every
report type on both and compares the documents byte for byte.
"""

from __future__ import annotations

import hashlib
import json

import pyarrow.parquet as pq
import pytest

from compliance_reports.audit.event_stream import digest_parquet
from compliance_reports.reports.builder import GENERATOR_VERSION, build_report
from compliance_reports.reports.document import HEADER_FIELDS, canonical_json, validate_document
from compliance_reports_tests.reports.conftest import (
    GENERATED_AT,
    facts,
    golden_config,
    rows,
    section,
    summary,
)
from compliance_reports_tests.reports.dataset import GOLDEN, load, make_rows

PERIOD = "2026-03-10"
# org-a's window 2026-03-09T23:00Z..2026-03-10T23:00Z: the longest silence is 00:30Z-04:00Z.
GOLDEN_COVERAGE_SUMMARY = {"Coverage": "complete", "Longest silence (hours)": 3.5}
REPORT_TYPES = ["general_compliance", "hipaa_audit_trail", "gdpr_processing_activities",
                "integrity_verification", "custom"]


def build(engine, report_type, **overrides):
    result = build_report(engine, engine, golden_config(report_type, **overrides), PERIOD,
                          run_id="run-1", generated_at=GENERATED_AT)
    validate_document(result.document)
    return result


def test_header(golden_db):
    result = build(golden_db, "general_compliance")
    header = result.document["header"]
    assert list(header) == list(HEADER_FIELDS)
    assert header == {
        "organization_id": "org-a",
        "report_id": "golden",
        "report_name": "Golden report",
        "report_type": "general_compliance",
        "frequency": "daily",
        "period": "2026-03-10",
        "timezone": "Europe/Berlin",
        "window_start_local": "2026-03-10T00:00:00+01:00",
        "window_end_local": "2026-03-11T00:00:00+01:00",
        "window_start_utc": "2026-03-09T23:00:00Z",
        "window_end_utc": "2026-03-10T23:00:00Z",
        "window_hours": 24,
        "window_note": None,
        "generated_at": "2026-03-12T06:00:00Z",
        "generator_version": GENERATOR_VERSION,
        "run_id": "run-1",
        "criteria": {"principal_ids": [], "actions": [], "data_classifications": [],
                     "statuses": [], "resource_types": [], "verified_only": False},
        "event_count": 28,
        "events_sha256": result.events_sha256,
    }
    assert result.event_count == 28
    assert result.integrity_verdict == "VERIFIED"


def test_general_compliance(golden_db):
    doc = build(golden_db, "general_compliance").document
    assert facts(doc, "totals") == {
        "Events": 28,
        "Distinct principals": 10,
        "Distinct resources": 18,
        "Successes": 22,
        "Failures": 6,
        "Attempts (no outcome yet)": 0,
        "Failure rate": 0.2143,
        "First event (UTC)": "2026-03-10T00:30:00.000Z",
        "Last event (UTC)": "2026-03-10T22:59:59.999Z",
    }
    assert facts(doc, "change") == {
        "Previous period": "2026-03-09",
        "Events in the previous period": 3,
        "Change in events": 25,
        "Change in events (%)": 833.33,
        "Failures in the previous period": 1,
        "Failure rate in the previous period": 0.3333,
        "Distinct principals in the previous period": 2,
    }
    assert rows(doc, "by_status") == [
        {"status": "failure", "events": 6, "previous": 1, "change": 5, "change_pct": 500.0},
        {"status": "success", "events": 22, "previous": 2, "change": 20, "change_pct": 1000.0},
    ]
    assert rows(doc, "by_classification") == [
        {"data_classification": "PHI", "events": 14},
        {"data_classification": "CONFIDENTIAL", "events": 7},
        {"data_classification": "INTERNAL", "events": 6},
        {"data_classification": "PUBLIC", "events": 1},
    ]
    assert [(r["category"], r["events"], r["failures"], r["principals"])
            for r in rows(doc, "by_category")] == [
        ("login", 4, 3, 1),
        ("phi_read", 8, 3, 3),
        ("phi_write", 1, 0, 1),
        ("disclosure", 1, 0, 1),
        ("export", 2, 0, 1),
        ("privileged_change", 1, 0, 1),
        ("audit_config_change", 1, 0, 1),
        ("emergency_access", 1, 0, 1),
        ("consent", 2, 0, 1),
        ("data_subject_request", 2, 0, 2),
        ("transfer", 2, 0, 1),
        ("breach", 2, 0, 1),
        ("other", 1, 0, 1),
    ]
    assert [(r["resource_type"], r["events"]) for r in rows(doc, "by_resource_type")] == [
        ("Patient", 10), ("Session", 4), ("Breach", 2), ("Consent", 2),
        ("DataSubjectRequest", 2), ("Dataset", 2), ("Group", 2), ("AuditConfig", 1),
        ("Observation", 1), ("Service", 1), ("User", 1),
    ]
    top = section(doc, "top_actions")
    assert top["rows"] == [
        {"action": "fhir.patient.read", "events": 7, "failures": 2, "share": 0.25},
        {"action": "auth.login", "events": 4, "failures": 3, "share": 0.1429},
        {"action": "data.export", "events": 2, "failures": 0, "share": 0.0714},
        {"action": "data.transfer.cross_border", "events": 2, "failures": 0, "share": 0.0714},
        {"action": "security.breach.record", "events": 2, "failures": 0, "share": 0.0714},
    ]
    assert top["total_rows"] == 16
    assert summary(doc) == {"Events": 28, "Distinct principals": 10, "Failure rate": 0.2143,
                            "Change against previous period (%)": 833.33, "Integrity": "VERIFIED",
                            **GOLDEN_COVERAGE_SUMMARY}
    assert doc["data"]["previous_period"]["events"] == 3


def test_hipaa_audit_trail(golden_db):
    doc = build(golden_db, "hipaa_audit_trail").document
    assert [(r["category"], r["events"], r["successes"], r["failures"], r["principals"], r["patients"])
            for r in rows(doc, "phi_access_by_category")] == [
        ("phi_read", 8, 5, 3, 3, 6),
        ("phi_write", 1, 1, 0, 1, 1),
        ("disclosure", 1, 1, 0, 1, 1),
        ("export", 2, 2, 0, 1, 0),
        ("emergency_access", 1, 1, 0, 1, 1),
        ("transfer", 1, 1, 0, 1, 0),
    ]
    assert rows(doc, "phi_access_by_principal") == [
        {"principal_id": "usr-1", "events": 5, "reads": 3, "writes": 1, "failures": 0, "patients": 3},
        {"principal_id": "usr-2", "events": 3, "reads": 3, "writes": 0, "failures": 3, "patients": 2},
        {"principal_id": "usr-4", "events": 3, "reads": 2, "writes": 0, "failures": 0, "patients": 2},
        {"principal_id": "usr-3", "events": 2, "reads": 0, "writes": 0, "failures": 0, "patients": 0},
        {"principal_id": "svc-etl", "events": 1, "reads": 0, "writes": 0, "failures": 0, "patients": 0},
    ]
    assert facts(doc, "authentication") == {
        "Successful logins": 1,
        "Failed logins": 3,
        "Login attempts without outcome": 0,
        "MFA challenges passed": 0,
        "MFA challenges failed": 0,
        "Logouts": 0,
        "Account lockouts": 0,
        "Other authentication events": 0,
        "Principals with failed logins": 1,
        "Principals with at least 3 failed logins": 1,
    }
    assert [(r["event_id"], r["action"], r["category"]) for r in rows(doc, "privileged_changes")] == [
        (24, "admin.role.assign", "privileged_change"),
        (25, "audit.config.update", "audit_config_change"),
    ]
    assert rows(doc, "emergency_access") == [{
        "event_id": 26, "time_utc": "2026-03-10T13:00:00.000Z",
        "time_local": "2026-03-10T14:00:00+01:00", "principal_id": "usr-4",
        "action": "emergency.access.grant", "resource": "Patient/p5", "status": "success",
        "justification": "ED",
    }]
    # data.anomalies: one finding per principal, as the rules found them
    anomalies = doc["data"]["anomalies"]
    assert [(f["code"], f["title"], f["evidence_event_ids"]) for f in anomalies] == [
        ("failed_logins", "Repeated failed logins: usr-2", [12, 13, 14]),
        ("after_hours_access", "After-hours PHI access", [10, 11, 36]),
        ("bulk_export", "Bulk exports", [21]),
        ("bulk_read", "Bulk PHI reads: usr-1", [16, 17]),
        ("bulk_read", "Bulk PHI reads: usr-2", [19, 20]),
        ("many_patients", "Many distinct patients: usr-1", [10, 16, 17, 18, 23]),
        # exactly at the threshold (2 distinct patients): flagged, "at least N" everywhere
        ("many_patients", "Many distinct patients: usr-2", [11, 19, 20]),
        ("many_patients", "Many distinct patients: usr-4", [26, 27, 36]),
        ("denied_access", "Repeated denied PHI access: usr-2", [11, 19, 20]),
    ]
    # the document's section: one finding per rule, the principals it covers in a table
    rolled = section(doc, "anomalies")["findings"]
    assert [(f["code"], f["title"], f["evidence_event_ids"]) for f in rolled] == [
        ("failed_logins", "Repeated failed logins: usr-2", [12, 13, 14]),
        ("after_hours_access", "After-hours PHI access", [10, 11, 36]),
        ("bulk_export", "Bulk exports", [21]),
        ("bulk_read", "Bulk PHI reads", [16, 17, 19, 20]),
        ("many_patients", "Many distinct patients", [10, 16, 17, 18, 23, 11, 19, 20, 26, 27, 36]),
        ("denied_access", "Repeated denied PHI access: usr-2", [11, 19, 20]),
    ]
    many = rolled[4]
    assert many["detail"] == "3 principals or resources meet this rule (threshold: at least 2)."
    assert many["subjects"]["total"] == 3
    assert many["subjects"]["rows"] == [
        {"subject": "usr-1", "measure": 3, "evidence": "10, 16, 17, 18, 23"},
        {"subject": "usr-2", "measure": 2, "evidence": "11, 19, 20"},
        {"subject": "usr-4", "measure": 2, "evidence": "26, 27, 36"},
    ]
    after = doc["data"]["after_hours"]
    assert after["events"] == 3 and after["principals"] == 3
    assert after["intervals_utc"] == [["2026-03-09T23:00:00Z", "2026-03-10T05:00:00Z"],
                                      ["2026-03-10T19:00:00Z", "2026-03-10T23:00:00Z"]]
    assert rows(doc, "bulk_reads") == doc["data"]["bulk_access"]["window_reads"]["rows"] == [
        {"principal_id": "usr-1", "window_start_utc": "2026-03-10T08:00:00.000Z",
         "window_start_local": "2026-03-10T09:00:00+01:00",
         "last_read_utc": "2026-03-10T08:10:00.000Z", "reads": 2},
        {"principal_id": "usr-2", "window_start_utc": "2026-03-10T09:00:00.000Z",
         "window_start_local": "2026-03-10T10:00:00+01:00",
         "last_read_utc": "2026-03-10T09:05:00.000Z", "reads": 2},
    ]
    assert doc["data"]["distinct_patients"]["principals"] == [
        {"principal_id": "usr-1", "patients": 3}, {"principal_id": "usr-2", "patients": 2},
        {"principal_id": "usr-4", "patients": 2}]
    assert rows(doc, "disclosures") == [{
        "event_id": 23, "date": "2026-03-10T11:00:00.000Z", "date_local": "2026-03-10T12:00:00+01:00",
        "recipient": "Dr X (Clinic Y)", "resource": "Patient/p1", "patient_id": "p1",
        "purpose": "treatment", "principal_id": "usr-1", "action": "phi.disclosure",
        "status": "success",
    }]
    assert facts(doc, "integrity")["Verdict"] == "VERIFIED"
    assert facts(doc, "integrity")["Rows checked"] == 28
    assert section(doc, "attestation")["kind"] == "attestation"
    assert summary(doc) == {
        "PHI access events": 14, "Principals accessing PHI": 5,
        "After-hours PHI access events": 3, "Failed logins": 3,
        "Anomaly findings": 9, "Disclosures": 1, "Emergency access events": 1,
        "Integrity": "VERIFIED", **GOLDEN_COVERAGE_SUMMARY,
    }


def test_gdpr_processing_activities(golden_db):
    doc = build(golden_db, "gdpr_processing_activities").document
    assert rows(doc, "processing_by_legal_basis") == [
        {"legal_basis": "contract", "events": 6, "data_subjects": 3},
        {"legal_basis": "legal_obligation", "events": 6, "data_subjects": 1},
        {"legal_basis": "vital_interests", "events": 4, "data_subjects": 3},
        {"legal_basis": "(missing)", "events": 3, "data_subjects": 0},
        {"legal_basis": "consent", "events": 2, "data_subjects": 1},
    ]
    assert [(r["data_classification"], r["resource_type"], r["events"], r["data_subjects"])
            for r in rows(doc, "processing_by_data_category")] == [
        ("PHI", "Patient", 10, 5),
        ("CONFIDENTIAL", "Breach", 2, 0),
        ("CONFIDENTIAL", "Consent", 2, 1),
        ("CONFIDENTIAL", "DataSubjectRequest", 2, 1),
        ("PHI", "Group", 2, 0),
        ("CONFIDENTIAL", "Dataset", 1, 0),
        ("PHI", "Dataset", 1, 0),
        ("PHI", "Observation", 1, 1),
    ]
    assert rows(doc, "data_subject_requests") == [
        {"request_type": "access", "received": 0, "completed": 0, "overdue": 1},
        {"request_type": "rectification", "received": 0, "completed": 0, "overdue": 0},
        {"request_type": "erasure", "received": 1, "completed": 1, "overdue": 0},
        {"request_type": "portability", "received": 0, "completed": 0, "overdue": 0},
        {"request_type": "objection", "received": 0, "completed": 0, "overdue": 0},
        {"request_type": "restriction", "received": 0, "completed": 0, "overdue": 0},
    ]
    assert rows(doc, "dsr_overdue") == [{
        "event_id": 1, "request_id": "r0", "request_type": "access",
        "received_utc": "2026-01-15T10:00:00.000Z", "deadline_utc": "2026-02-14T10:00:00.000Z",
        "open_past_deadline": "24 d 13 h",
    }]
    assert rows(doc, "consent") == [{"action": "consent.given", "events": 1},
                                    {"action": "consent.withdrawn", "events": 1}]
    assert doc["data"]["consent"]["given"] == 1 and doc["data"]["consent"]["withdrawn"] == 1
    assert rows(doc, "transfers") == [
        {"destination_country": "CH", "mechanism": "(missing)", "events": 1, "records": 5},
        {"destination_country": "US", "mechanism": "SCC", "events": 1, "records": 10},
    ]
    assert [(r["breach_id"], r["became_aware_at"], r["notified_at"], r["hours_to_notify"],
             r["deadline"], r["status"], r["past_deadline"]) for r in rows(doc, "breaches")] == [
        ("b1", "2026-03-06T17:00:00Z", "2026-03-10T17:00:00Z", 96, "2026-03-09T17:00:00Z", "late",
         "1 d"),
        ("b2", "2026-03-10T12:00:00Z", None, None, "2026-03-13T12:00:00Z", "not notified (pending)",
         None),
    ]
    # the section lists the most severe first; data.findings keeps the order of the rules
    found = section(doc, "findings")["findings"]
    assert [(f["severity"], f["code"], f["evidence_event_ids"]) for f in found] == [
        ("critical", "dsr_overdue", [1]),
        ("critical", "breach_notified_late", [34]),
        ("warning", "missing_legal_basis", [19, 20, 33]),
        ("warning", "transfer_without_basis", [33]),
        ("warning", "breach_not_notified", [35]),
    ]
    assert [f["code"] for f in doc["data"]["findings"]] == [
        "missing_legal_basis", "dsr_overdue", "transfer_without_basis", "breach_notified_late",
        "breach_not_notified"]
    assert summary(doc) == {
        "Personal-data processing events": 21, "Without legal basis": 3,
        "Data-subject requests received": 1, "Requests open past deadline": 1,
        "Cross-border transfers": 2, "Breaches": 2, "Integrity": "VERIFIED",
        **GOLDEN_COVERAGE_SUMMARY,
    }


def test_integrity_verification(golden_db):
    doc = build(golden_db, "integrity_verification").document
    assert facts(doc, "verdict") == {
        "Verdict": "VERIFIED",
        "Reason": "all 28 row(s) in the window verified and the chain is intact",
        "Rows checked": 28, "Verified": 28, "Hash mismatches": 0, "Rows without hash": 0,
        "Chain breaks": 0,
    }
    assert rows(doc, "breaks") == []
    assert doc["data"]["verdict"] == "VERIFIED"


def test_custom_extract_with_parquet(golden_db, tmp_path):
    path = tmp_path / "events.parquet"
    report = golden_config("custom", criteria={"actions": ["fhir.*.read"], "statuses": ["failure"]},
                           options={"pdf_event_limit": 2})
    result = build_report(golden_db, golden_db, report, PERIOD, run_id=None,
                          generated_at=GENERATED_AT, events_path=path)
    doc = result.document
    assert result.event_count == 3 and doc["header"]["event_count"] == 3
    events = section(doc, "events")
    assert [r["id"] for r in events["rows"]] == [11, 19]
    assert events["total_rows"] == 3 and "CSV/Parquet" in events["note"]
    # The canonical rows, written out independently of event_stream.
    by_id = {r[0]: r for r in GOLDEN}
    chained = {r["id"]: r for r in make_rows(GOLDEN)}
    lines = []
    for event_id in (11, 19, 20):
        spec = by_id[event_id]
        row = chained[event_id]
        record = {
            "id": event_id, "timestamp": spec[2].replace("Z", ".000000Z"), "organization_id": "org-a",
            "principal_id": spec[3], "action": spec[4], "target_resource_type": spec[5],
            "target_resource_id": spec[6], "status": spec[7], "outcome_description": f"{spec[4]} {spec[7]}",
            "data_classification": spec[8], "correlation_id": None, "hash": row["hash"],
            "prev_hash": row["prev_hash"],
            "details": json.dumps(spec[9], sort_keys=True, separators=(",", ":")),
        }
        lines.append(json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n")
    expected = hashlib.sha256("".join(lines).encode()).hexdigest()
    assert result.events_sha256 == expected == doc["header"]["events_sha256"]
    assert result.events_path == path
    table = pq.read_table(path)
    assert table.num_rows == 3
    assert str(table.schema.field("timestamp").type) == "timestamp[us, tz=UTC]"
    assert str(table.schema.field("id").type) == "int64"
    assert digest_parquet(path) == expected


def test_backends_agree(engine, pg_engine):
    load(engine, GOLDEN)
    load(pg_engine, GOLDEN)
    for report_type in REPORT_TYPES:
        a = build(engine, report_type).document
        b = build(pg_engine, report_type).document
        assert canonical_json(a) == canonical_json(b), report_type


@pytest.mark.parametrize("report_type", REPORT_TYPES)
def test_every_type_is_valid_on_an_empty_window(engine, report_type):
    result = build_report(engine, engine, golden_config(report_type), PERIOD, run_id=None,
                          generated_at=GENERATED_AT)
    validate_document(result.document)
    assert result.event_count == 0
    assert result.events_sha256 == hashlib.sha256(b"").hexdigest()
    # No row of the organization in the window: nothing was verified, which is not VERIFIED.
    assert result.integrity_verdict == "NO_DATA"
    coverage = result.document["data"]["coverage"]
    assert coverage["status"] == "no_data" and coverage["units_without_events"] == 24
    assert [f["code"] for f in section(result.document, "coverage_findings")["findings"]] == [
        "coverage_no_data"]
    assert summary(result.document)["Coverage"] == "no events"
