"""A realistic report document and events file for the exporter tests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from compliance_reports.reports import document as rd

FORMULA = "=cmd|' /C calc'!A0"
SCRIPT = "<script>alert(1)</script>"

EVENT_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("principal_id", pa.string()),
        ("organization_id", pa.string()),
        ("action", pa.string()),
        ("target_resource_type", pa.string()),
        ("target_resource_id", pa.string()),
        ("status", pa.string()),
        ("data_classification", pa.string()),
        ("outcome_description", pa.string()),
        ("hash", pa.string()),
        ("prev_hash", pa.string()),
        ("correlation_id", pa.string()),
        ("details", pa.string()),
    ]
)

SPECIAL_VALUES = [
    FORMULA,
    "+SUM(A1:A2)",
    "-2+3",
    "@import",
    "\tindented",
    "\rcarriage",
    SCRIPT,
    "Crème brûlée, \"quoted\", comma",
    "Ωμέγα Ελληνικά",
    "Жук Кириллица",
    "line one\nline two",
    "a & b < c > d",
]


def sample_events(n: int = 40) -> list[dict[str, Any]]:
    base = datetime(2026, 11, 1, 0, 0, 0, tzinfo=timezone.utc)
    rows = []
    prev = None
    for i in range(n):
        digest = f"{i:064x}"
        rows.append(
            {
                "id": 1000 + i,
                "timestamp": base + timedelta(hours=i, microseconds=123456 + i),
                "principal_id": SPECIAL_VALUES[(i // 3) % len(SPECIAL_VALUES)] if i % 3 == 0 else f"user-{i % 7}",
                "organization_id": "acme-health",
                "action": ["login", "fhir.patient.read", "export", "=HYPERLINK(\"x\")"][i % 4],
                "target_resource_type": "Patient" if i % 2 else None,
                "target_resource_id": f"pat-{i:04d}" if i % 2 else None,
                "status": ["success", "failure", "attempt"][i % 3],
                "data_classification": ["PHI", "INTERNAL", "CONFIDENTIAL", "PUBLIC"][i % 4],
                "outcome_description": None if i % 5 == 0 else f"outcome {i}: Ж Ω é",
                "hash": digest,
                "prev_hash": prev,
                "correlation_id": f"corr-{i // 3}",
                "details": None if i % 6 == 0 else (
                    # every other row non-compact, as PostgreSQL's jsonb::text writes it
                    json.dumps({"session_context": {"ip_address": f"10.0.0.{i}", "user_agent": "Mozilla/5.0 (X11, Linux)"}, "n": i})
                    if i % 2 else
                    json.dumps({"session_context": {"ip_address": f"10.0.0.{i}"}, "note": "ünïcode"},
                               separators=(",", ":"), ensure_ascii=False)
                ),
            }
        )
        prev = digest
    return rows


def write_events(path: Path, n: int = 40, row_group_size: int | None = None) -> Path:
    table = pa.Table.from_pylist(sample_events(n), schema=EVENT_SCHEMA)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def sample_document(table_rows: int = 12, event_count: int = 40) -> dict[str, Any]:
    header = {
        "organization_id": "acme-health",
        "report_id": "hipaa-monthly",
        "report_name": "HIPAA audit trail — Acme Health (é Ω Ж)",
        "report_type": "hipaa_audit_trail",
        "frequency": "monthly",
        "period": "2026-11-01",
        "timezone": "Europe/Berlin",
        "window_start_local": "2026-11-01T00:00:00+01:00",
        "window_end_local": "2026-12-01T00:00:00+01:00",
        "window_start_utc": "2026-10-31T23:00:00Z",
        "window_end_utc": "2026-11-30T23:00:00Z",
        "window_hours": 720,
        "window_note": None,
        "generated_at": "2026-12-01T06:00:03Z",
        "generator_version": "0.1.0",
        "run_id": "run-7f3a",
        "criteria": {"actions": ["login", "fhir.*.read"], "statuses": [], "verified_only": False},
        "event_count": event_count,
        "events_sha256": "ab" * 32,
    }
    summary = [
        {"label": "Total events", "value": 48213},
        {"label": "PHI accesses", "value": 9177},
        {"label": "Failed logins", "value": 311},
        {"label": "Success rate", "value": 0.9871},
        {"label": "Chain verified", "value": True},
    ]
    rows = [
        {
            "user": SPECIAL_VALUES[i % len(SPECIAL_VALUES)] if i < len(SPECIAL_VALUES) else f"user-{i:03d}",
            "accesses": 1000 - i,
            "share": round(1 / (i + 1), 4),
            "after_hours": i % 2 == 0,
            "last_seen": None if i % 4 == 0 else f"2026-11-{(i % 28) + 1:02d}T10:00:00Z",
        }
        for i in range(table_rows)
    ]
    sections = [
        rd.facts("scope", "Scope", [("Organization", "acme-health"), ("Period", "November 2026"),
                                    ("Formula-looking", FORMULA), ("Greek", "Ωμέγα"), ("Empty", None)],
                 description="What this report covers"),
        rd.table("access-by-user", "Access by user",
                 [("user", "User"), ("accesses", "Accesses"), ("share", "Share"),
                  ("after_hours", "After hours"), ("last_seen", "Last seen")],
                 rows, total_rows=table_rows + 5, note="Top users only; Жук note"),
        rd.table("phi-by-resource", "PHI access by resource type",
                 [("resource_type", "Resource type"), ("reads", "Reads"), ("writes", "Writes")],
                 [{"resource_type": t, "reads": 10 * k, "writes": k} for k, t in
                  enumerate(["Patient", "Observation", "Encounter", SCRIPT, "Ωbservation"])]),
        rd.table("empty-table", "Denied access", [("user", "User"), ("count", "Count")], []),
        rd.findings("findings", "Findings", [
            rd.finding("critical", "BULK_ACCESS", "Bulk PHI access by user-3",
                       "user-3 read 412 patient records in 10 minutes <b>not bold</b>", [1001, 1002, 1003]),
            rd.finding("warning", "AFTER_HOURS", "After-hours access", "Crème brûlée at 02:00 Ж",
                       list(range(2000, 2070))),
            rd.finding("info", "NEW_DEVICE", "New device", FORMULA, ["evt-a", "evt-b"]),
        ]),
        rd.findings("no-findings", "Integrity findings", []),
        rd.text("method", "Method", ["Events were read from audit_log. Ωμέγα, Жук, é.", SCRIPT]),
        rd.attestation("attest", "Attestation",
                       "I have reviewed this report and confirm it is complete.",
                       ["Reviewer name", "Signature", "Date"]),
    ]
    document = {
        "schema_version": rd.SCHEMA_VERSION,
        "header": header,
        "summary": summary,
        "sections": sections,
        "data": {"by_action": {"login": 120, "export": 3}, "nested": [1, 2.5, None, True, "x & <y>"]},
    }
    rd.validate_document(document)
    return document


def big_table_document(rows: int = 300) -> dict[str, Any]:
    doc = sample_document(table_rows=12)
    doc["sections"].append(
        rd.table("big", "All accesses", [("n", "N"), ("user", "User"), ("action", "Action"), ("when", "When")],
                 [{"n": i, "user": f"user-{i % 40}", "action": "fhir.patient.read",
                   "when": f"2026-11-{(i % 28) + 1:02d}T{i % 24:02d}:00:00Z"} for i in range(rows)])
    )
    rd.validate_document(doc)
    return doc
