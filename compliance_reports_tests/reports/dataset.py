"""Hand-built audit rows for the report tests: hashes and the per-organization chain computed
the way the source system writes them, ids given explicitly so expected evidence is literal."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, insert

from compliance_reports.audit.hashing import HASH_ALGORITHM, row_hash
from compliance_reports.db.schema import audit_log

FIELDS = ("id", "organization_id", "timestamp", "principal_id", "action", "target_resource_type",
          "target_resource_id", "status", "data_classification", "details")


def ts(value: str) -> datetime:
    """'2026-03-10T08:00:00Z' (or with milliseconds) -> aware UTC datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


def make_rows(specs: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows from (id, org, time, principal, action, rtype, rid, status, class, details) tuples,
    with hash and prev_hash chained per organization in (timestamp, id) order."""
    rows = []
    for spec in specs:
        row = dict(zip(FIELDS, spec))
        row["timestamp"] = ts(row["timestamp"]) if isinstance(row["timestamp"], str) else row["timestamp"]
        row.setdefault("details", None)
        row["outcome_description"] = f"{row['action']} {row['status']}"
        row["hash_algorithm"] = HASH_ALGORITHM
        rows.append(row)
    prev: dict[str, str | None] = {}
    for row in sorted(rows, key=lambda r: (r["timestamp"], r["id"])):
        row["hash"] = row_hash(row)
        row["prev_hash"] = prev.get(row["organization_id"])
        prev[row["organization_id"]] = row["hash"]
    return rows


def insert_rows(engine: Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        conn.execute(insert(audit_log), rows)


def load(engine: Engine, specs: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    rows = make_rows(specs)
    insert_rows(engine, rows)
    return rows


def gdpr(legal_basis: str | None = None, subject: str | None = None, **extra) -> dict:
    context = {}
    if legal_basis:
        context["legal_basis"] = legal_basis
    if subject:
        context["data_subject_id"] = subject
    context.update(extra)
    return context


# ------------------------------------------------------------------ the golden dataset
# Organization org-a reports in Europe/Berlin; period 2026-03-10 (a Tuesday, UTC+1), so the
# window is 2026-03-09T23:00Z .. 2026-03-10T23:00Z. org-b's rows share times, principals,
# request ids and patients with org-a and must never show up in org-a's reports.

A, B = "org-a", "org-b"
P, C, I, U = "PHI", "CONFIDENTIAL", "INTERNAL", "PUBLIC"
OK, FAIL = "success", "failure"


def _dsr(request_id, kind, subject):
    return {"request_id": request_id, "gdpr_context": gdpr("legal_obligation", subject, request_type=kind)}


GOLDEN = [
    # before the window: old data-subject requests, then the previous day (2026-03-09 local)
    (1, A, "2026-01-15T10:00:00Z", "usr-5", "dsr.access.request", "DataSubjectRequest", "DataSubjectRequest/r0", OK, C, _dsr("r0", "access", "s0")),
    (2, A, "2026-01-20T10:00:00Z", "usr-5", "dsr.access.request", "DataSubjectRequest", "DataSubjectRequest/r00", OK, C, _dsr("r00", "access", "s00")),
    (3, A, "2026-02-01T10:00:00Z", "svc-dsr", "dsr.access.complete", "DataSubjectRequest", "DataSubjectRequest/r00", OK, C, _dsr("r00", "access", "s00")),
    (4, A, "2026-03-09T10:00:00Z", "usr-1", "auth.login", "Session", None, OK, I, {}),
    (5, A, "2026-03-09T11:00:00Z", "usr-1", "fhir.patient.read", "Patient", "Patient/p1", OK, P, {"patient_id": "p1", "gdpr_context": gdpr("vital_interests", "p1")}),
    (6, A, "2026-03-09T12:00:00Z", "usr-2", "auth.login", "Session", None, FAIL, I, {}),
    # the window
    (10, A, "2026-03-10T00:30:00Z", "usr-1", "fhir.patient.read", "Patient", "Patient/p1", OK, P, {"patient_id": "p1", "gdpr_context": gdpr("vital_interests", "p1")}),
    (11, A, "2026-03-10T04:00:00Z", "usr-2", "fhir.observation.read", "Observation", "Observation/o2", FAIL, P, {"patient_id": "p2", "gdpr_context": gdpr("contract", "p2")}),
    (12, A, "2026-03-10T07:00:00Z", "usr-2", "auth.login", "Session", None, FAIL, I, {}),
    (13, A, "2026-03-10T07:01:00Z", "usr-2", "auth.login", "Session", None, FAIL, I, {}),
    (14, A, "2026-03-10T07:02:00Z", "usr-2", "auth.login", "Session", None, FAIL, I, {}),
    (15, A, "2026-03-10T07:05:00Z", "usr-2", "auth.login", "Session", None, OK, I, {}),
    (16, A, "2026-03-10T08:00:00Z", "usr-1", "fhir.patient.read", "Patient", "Patient/p2", OK, P, {"patient_id": "p2", "gdpr_context": gdpr("contract", "p2")}),
    (17, A, "2026-03-10T08:10:00Z", "usr-1", "fhir.patient.read", "Patient", "Patient/p3", OK, P, {"patient_id": "p3", "gdpr_context": gdpr("contract", "p3")}),
    (18, A, "2026-03-10T08:20:00Z", "usr-1", "fhir.patient.update", "Patient", "Patient/p3", OK, P, {"patient_id": "p3", "gdpr_context": gdpr("contract", "p3")}),
    (19, A, "2026-03-10T09:00:00Z", "usr-2", "fhir.patient.read", "Patient", "Patient/p4", FAIL, P, {"patient_id": "p4", "gdpr_context": {}}),
    (20, A, "2026-03-10T09:05:00Z", "usr-2", "fhir.patient.read", "Patient", "Patient/p4", FAIL, P, {"patient_id": "p4"}),
    (21, A, "2026-03-10T10:00:00Z", "usr-3", "data.export", "Group", "Group/g1", OK, P, {"record_count": 500, "gdpr_context": gdpr("legal_obligation")}),
    (22, A, "2026-03-10T10:30:00Z", "usr-3", "data.export", "Group", "Group/g2", OK, P, {"record_count": 1, "gdpr_context": gdpr("legal_obligation")}),
    (23, A, "2026-03-10T11:00:00Z", "usr-1", "phi.disclosure", "Patient", "Patient/p1", OK, P, {"recipient": {"name": "Dr X", "organization": "Clinic Y"}, "purpose": "treatment", "patient_id": "p1", "gdpr_context": gdpr("contract", "p1")}),
    (24, A, "2026-03-10T12:00:00Z", "adm-1", "admin.role.assign", "User", "User/usr-3", OK, I, {"role": "auditor"}),
    (25, A, "2026-03-10T12:30:00Z", "adm-1", "audit.config.update", "AuditConfig", "AuditConfig/log_level", OK, I, {}),
    (26, A, "2026-03-10T13:00:00Z", "usr-4", "emergency.access.grant", "Patient", "Patient/p5", OK, P, {"justification": "ED", "patient_id": "p5", "gdpr_context": gdpr("vital_interests", "p5")}),
    (27, A, "2026-03-10T13:01:00Z", "usr-4", "fhir.patient.read", "Patient", "Patient/p5", OK, P, {"patient_id": "p5", "gdpr_context": gdpr("vital_interests", "p5")}),
    (28, A, "2026-03-10T14:00:00Z", "usr-5", "dsr.erasure.request", "DataSubjectRequest", "DataSubjectRequest/r1", OK, C, _dsr("r1", "erasure", "s1")),
    (29, A, "2026-03-10T15:00:00Z", "svc-dsr", "dsr.erasure.complete", "DataSubjectRequest", "DataSubjectRequest/r1", OK, C, _dsr("r1", "erasure", "s1")),
    (30, A, "2026-03-10T15:30:00Z", "svc-portal", "consent.given", "Consent", "Consent/c1", OK, C, {"gdpr_context": gdpr("consent", "s2")}),
    (31, A, "2026-03-10T15:40:00Z", "svc-portal", "consent.withdrawn", "Consent", "Consent/c1", OK, C, {"gdpr_context": gdpr("consent", "s2")}),
    (32, A, "2026-03-10T16:00:00Z", "svc-etl", "data.transfer.cross_border", "Dataset", "Dataset/d1", OK, C, {"destination_country": "US", "mechanism": "SCC", "record_count": 10, "gdpr_context": gdpr("contract")}),
    (33, A, "2026-03-10T16:10:00Z", "svc-etl", "data.transfer.cross_border", "Dataset", "Dataset/d2", OK, P, {"destination_country": "CH", "record_count": 5}),
    (34, A, "2026-03-10T17:00:00Z", "usr-6", "security.breach.record", "Breach", "Breach/b1", OK, C, {"breach_id": "b1", "became_aware_at": "2026-03-06T17:00:00Z", "notified_at": "2026-03-10T17:00:00Z", "gdpr_context": gdpr("legal_obligation")}),
    (35, A, "2026-03-10T17:30:00Z", "usr-6", "security.breach.record", "Breach", "Breach/b2", OK, C, {"breach_id": "b2", "became_aware_at": "2026-03-10T12:00:00Z", "gdpr_context": gdpr("legal_obligation")}),
    (36, A, "2026-03-10T20:00:00Z", "usr-4", "fhir.patient.read", "Patient", "Patient/p6", OK, P, {"patient_id": "p6", "gdpr_context": gdpr("vital_interests", "p6")}),
    (37, A, "2026-03-10T22:59:59.999Z", "usr-1", "system.healthcheck", "Service", "Service/api", OK, U, {}),
    # after the window (local midnight of 2026-03-11)
    (38, A, "2026-03-10T23:00:00Z", "usr-1", "fhir.patient.read", "Patient", "Patient/p1", OK, P, {"patient_id": "p1"}),
    # another organization, same names, same times
    (101, B, "2026-01-01T10:00:00Z", "usr-5", "dsr.access.request", "DataSubjectRequest", "DataSubjectRequest/r0", OK, C, _dsr("r0", "access", "s0")),
    (102, B, "2026-01-10T10:00:00Z", "svc-dsr", "dsr.access.complete", "DataSubjectRequest", "DataSubjectRequest/r0", OK, C, _dsr("r0", "access", "s0")),
    (103, B, "2026-03-10T07:00:00Z", "usr-2", "auth.login", "Session", None, FAIL, I, {}),
    (104, B, "2026-03-10T07:01:00Z", "usr-2", "auth.login", "Session", None, FAIL, I, {}),
    (105, B, "2026-03-10T07:02:00Z", "usr-2", "auth.login", "Session", None, FAIL, I, {}),
    (106, B, "2026-03-10T08:00:00Z", "usr-1", "fhir.patient.read", "Patient", "Patient/p9", OK, P, {"patient_id": "p9"}),
    (107, B, "2026-03-10T08:05:00Z", "usr-1", "fhir.patient.read", "Patient", "Patient/p8", FAIL, P, {"patient_id": "p8"}),
    (108, B, "2026-03-10T10:00:00Z", "usr-3", "data.export", "Group", "Group/g9", OK, P, {"record_count": 5000}),
    (109, B, "2026-03-10T17:00:00Z", "usr-6", "security.breach.record", "Breach", "Breach/bx", OK, C, {"breach_id": "bx", "became_aware_at": "2026-03-01T00:00:00Z"}),
    (110, B, "2026-03-10T21:00:00Z", "usr-9", "fhir.patient.read", "Patient", "Patient/p1", OK, P, {"patient_id": "p1"}),
]
