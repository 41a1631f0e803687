"""Property: a report never shows another organization's events, principals or counts.

Random data for three organizations that share request ids, breach ids, patient numbers and
timestamps; every string of org-b and org-c carries its organization name, and their event ids
live in their own ranges, so any leak is visible in the document.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from compliance_reports.db.schema import audit_log, integrity_checkpoints
from compliance_reports.periods import period_window
from compliance_reports.reports.builder import build_report
from compliance_reports.reports.document import validate_document
from compliance_reports_tests.reports.conftest import golden_config, section
from compliance_reports_tests.reports.dataset import insert_rows, make_rows

ORGS = ("org-a", "org-b", "org-c")
ID_BASE = {"org-a": 1, "org-b": 100_000, "org-c": 200_000}
ACTIONS = [
    "auth.login", "fhir.patient.read", "fhir.observation.read", "fhir.patient.update",
    "phi.disclosure", "record.share", "data.export", "admin.role.assign", "audit.config.update",
    "emergency.access.grant", "consent.given", "consent.withdrawn", "dsr.access.request",
    "dsr.access.complete", "dsr.erasure.request", "data.transfer.cross_border",
    "security.breach.record", "system.healthcheck",
]
PERIOD = "2026-05-12"
TIMEZONE = "America/New_York"
WINDOW = period_window(PERIOD, "daily", TIMEZONE)
START = WINDOW.start_utc - timedelta(days=40)  # old enough for overdue data-subject requests

event = st.tuples(
    st.sampled_from(ORGS),
    st.one_of(  # minutes after START: mostly around the window, sometimes long before it
        st.integers(min_value=40 * 24 * 60 - 90, max_value=41 * 24 * 60 + 90),
        st.integers(min_value=0, max_value=41 * 24 * 60),
    ),
    st.sampled_from(ACTIONS),
    st.sampled_from(["success", "failure", "attempt"]),
    st.sampled_from(["PHI", "CONFIDENTIAL", "INTERNAL", "PUBLIC", None]),
    st.integers(min_value=0, max_value=3),      # principal
    st.integers(min_value=0, max_value=3),      # patient / request / breach number
    st.integers(min_value=0, max_value=300),    # record_count
    st.sampled_from(["consent", "contract", None]),
)

# Every action for every organization, in the window and 35 days before it.
RICH = [
    (org, minutes, action, status, "PHI" if i % 2 else "CONFIDENTIAL", i % 4, i % 3, 150, None)
    for i, (org, minutes, action, status) in enumerate(
        (org, 40 * 24 * 60 + 300 + 7 * k + (i % 5), action, ("success", "failure")[k % 2])
        for i, org in enumerate(ORGS)
        for k, action in enumerate(ACTIONS * 2)
    )
] + [("org-a", 5 * 24 * 60, "dsr.access.request", "success", "CONFIDENTIAL", 0, 1, 0, "consent"),
     ("org-b", 6 * 24 * 60, "dsr.access.complete", "success", "CONFIDENTIAL", 0, 1, 0, "consent")]


def _spec(index: int, item) -> tuple:
    org, minutes, action, status, dclass, who, n, records, basis = item
    ts = START + timedelta(minutes=minutes, seconds=index % 60)
    tag = org  # every string of an organization names it
    details = {
        "patient_id": f"{tag}-p{n}",
        "record_count": records,
        "request_id": f"req-{n}",   # shared across organizations on purpose
        "breach_id": f"b-{n}",
        "became_aware_at": (ts - timedelta(hours=records)).isoformat(),
        "recipient": {"name": f"{tag}-recipient", "organization": f"{tag}-clinic"},
        "purpose": f"{tag}-purpose",
        "destination_country": f"{tag}-XX",
        "mechanism": f"{tag}-SCC",
        "justification": f"{tag}-why",
        "gdpr_context": {"legal_basis": basis, "data_subject_id": f"{tag}-s{n}"},
    }
    return (ID_BASE[org] + index, org, ts, f"{tag}-usr-{who}", action, "Patient",
            f"Patient/{tag}-p{n}", status, dclass, details)


def _walk(value, path=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, path)
    else:
        yield path, value


ID_KEYS = ("event_id", "evidence_event_ids", "event_ids", ".id", "first_row_id", "last_event_id")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(event, min_size=0, max_size=80))
@example(RICH)
def test_reports_never_show_another_organization(engine, events):
    with engine.begin() as conn:
        conn.execute(delete(audit_log))
        conn.execute(delete(integrity_checkpoints))
    rows = make_rows(_spec(i, item) for i, item in enumerate(events))
    if rows:
        insert_rows(engine, rows)
    own = [r for r in rows if r["organization_id"] == "org-a"
           and WINDOW.start_utc <= r["timestamp"] < WINDOW.end_utc]
    foreign_ids = {r["id"] for r in rows if r["organization_id"] != "org-a"}
    options = {"top_n": 3, "failed_login_threshold": 1, "denied_access_threshold": 1,
               "bulk_access_threshold": 1, "distinct_patients_threshold": 1,
               "dsr_deadline_days": 1, "pdf_event_limit": 1000}
    for report_type in ("general_compliance", "hipaa_audit_trail", "gdpr_processing_activities",
                        "integrity_verification", "custom"):
        report = golden_config(report_type, options=options,
                               schedule={"frequency": "daily", "timezone": TIMEZONE})
        result = build_report(engine, engine, report, PERIOD, run_id=None,
                              generated_at=datetime(2026, 6, 1, tzinfo=timezone.utc),
                              checkpoint_key=b"k", sign_checkpoint=True)
        doc = result.document
        validate_document(doc)
        assert result.event_count == len(own)
        assert doc["data"]["events"]["rows_in_window"] == len(own)
        assert doc["data"]["coverage"]["events"] == len(own)
        for path, value in _walk(doc):
            if isinstance(value, str):
                assert "org-b" not in value and "org-c" not in value, (report_type, path, value)
            if isinstance(value, int) and not isinstance(value, bool) and any(k in path for k in ID_KEYS):
                assert value not in foreign_ids, (report_type, path, value)
        if report_type == "general_compliance":
            totals = {f["label"]: f["value"] for f in section(doc, "totals")["facts"]}
            assert totals["Events"] == len(own)
            assert totals["Failures"] == sum(r["status"] == "failure" for r in own)
        if report_type == "custom":
            assert sorted(r["id"] for r in section(doc, "events")["rows"]) == sorted(r["id"] for r in own)
        if report_type == "integrity_verification":
            assert result.integrity_verdict == ("VERIFIED" if own else "NO_DATA")

