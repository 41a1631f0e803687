"""Golden reports on the edges: rows placed 1 ms either side of every deadline, a burst of reads
across a UTC hour, counts exactly at each threshold, authentication kinds, and an accounting of
disclosures longer than any cap, read back from JSON, XML and the PDF.

Every expected figure is derived by hand from the rows below; each test runs on SQLite and on
PostgreSQL (``edge_db``). The period is 2026-03-10 in Europe/Berlin: the window is
2026-03-09T23:00Z .. 2026-03-10T23:00Z.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import timedelta

import pytest
from pypdf import PdfReader

from compliance_reports.exporters.json_exporter import write_json
from compliance_reports.exporters.pdf_exporter import appendices, write_pdf
from compliance_reports.exporters.xml_exporter import write_xml
from compliance_reports.reports import document as rd
from compliance_reports.reports.builder import build_report
from compliance_reports.reports.document import canonical_json, validate_document
from compliance_reports_tests.reports.conftest import (
    GENERATED_AT,
    facts,
    golden_config,
    rows,
    section,
    summary,
)
from compliance_reports_tests.reports.dataset import GOLDEN, gdpr, load, ts

PERIOD = "2026-03-10"
A = "org-a"
OK, FAIL = "success", "failure"
QUIET = {  # thresholds no edge dataset reaches, so only the rule under test speaks
    "failed_login_threshold": 1000, "denied_access_threshold": 1000,
    "bulk_access_threshold": 1000, "distinct_patients_threshold": 1000,
    "after_hours_start": "00:00", "after_hours_end": "00:00", "weekend_is_after_hours": False,
}


@pytest.fixture(params=["sqlite", "postgresql"])
def edge_db(request):
    return request.getfixturevalue("engine" if request.param == "sqlite" else "pg_engine")


def build(engine, report_type, **options):
    report = golden_config(report_type, options={**QUIET, **options})
    document = build_report(engine, engine, report, PERIOD, run_id="run-edge",
                            generated_at=GENERATED_AT).document
    validate_document(document)
    return document


def codes(document, data_key):
    """The findings as the rules found them (one per principal), before the section's roll-up."""
    return [(f["code"], f["title"], f["evidence_event_ids"]) for f in document["data"][data_key]]


# ------------------------------------------------------------------ GDPR clocks


def _breach(event_id, minute, breach_id, aware, notified=None):
    details = {"breach_id": breach_id, "became_aware_at": aware,
               "gdpr_context": gdpr("legal_obligation")}
    if notified:
        details["notified_at"] = notified
    return (event_id, A, f"2026-03-10T20:{minute:02d}:00Z", "usr-6", "security.breach.record",
            "Breach", f"Breach/{breach_id}", OK, "CONFIDENTIAL", details)


def _dsr(event_id, at, action, request_id, kind):
    return (event_id, A, at, "usr-5", action, "DataSubjectRequest",
            f"DataSubjectRequest/{request_id}", OK, "CONFIDENTIAL",
            {"request_id": request_id,
             "gdpr_context": gdpr("legal_obligation", f"s-{request_id}", request_type=kind)})


CLOCK_ROWS = [
    # 72-hour clock: deadline = awareness + 72 h
    _breach(1, 0, "b-before", "2026-03-07T10:00:00Z", "2026-03-10T09:59:59.999Z"),  # 1 ms before
    _breach(2, 1, "b-at", "2026-03-07T11:00:00Z", "2026-03-10T11:00:00Z"),          # at it
    _breach(3, 2, "b-after", "2026-03-07T12:00:00Z", "2026-03-10T12:00:00.001Z"),   # 1 ms after
    _breach(4, 3, "b-179s", "2026-03-07T13:00:00Z", "2026-03-10T13:02:59Z"),        # rounds to 72.0 h
    _breach(5, 4, "b-due-at-end", "2026-03-07T23:00:00Z"),          # deadline = window end
    _breach(6, 5, "b-due-before-end", "2026-03-07T22:59:59.999Z"),  # 1 ms before window end
    # 30-day DSR deadline = receipt + 30 x 24 h; the window ends 2026-03-10T23:00Z
    _dsr(11, "2026-02-08T23:00:00Z", "dsr.access.request", "r-at", "access"),         # due at end
    _dsr(12, "2026-02-08T22:59:59.999Z", "dsr.erasure.request", "r-past", "erasure"),  # 1 ms past
    _dsr(13, "2026-01-01T10:00:00Z", "dsr.access.request", "r-done", "access"),
    _dsr(14, "2026-03-10T22:59:59.999Z", "dsr.access.complete", "r-done", "access"),  # just in time
    _dsr(15, "2026-01-02T10:00:00Z", "dsr.portability.request", "r-late", "portability"),
    _dsr(16, "2026-03-10T23:00:00Z", "dsr.portability.complete", "r-late", "portability"),  # next day
]


def test_breach_clock_compares_instants(edge_db):
    load(edge_db, CLOCK_ROWS)
    doc = build(edge_db, "gdpr_processing_activities")
    assert [(r["breach_id"], r["notified_at"], r["hours_to_notify"], r["deadline"], r["status"],
             r["past_deadline"]) for r in rows(doc, "breaches")] == [
        ("b-before", "2026-03-10T09:59:59.999000Z", 72, "2026-03-10T10:00:00Z", "on time", None),
        ("b-at", "2026-03-10T11:00:00Z", 72, "2026-03-10T11:00:00Z", "on time", None),
        # 72.0 hours to one decimal, yet late: the verdict comes from the instants
        ("b-after", "2026-03-10T12:00:00.001000Z", 72, "2026-03-10T12:00:00Z", "late", "1 ms"),
        ("b-179s", "2026-03-10T13:02:59Z", 72, "2026-03-10T13:00:00Z", "late", "2 min 59 s"),
        ("b-due-before-end", None, None, "2026-03-10T22:59:59.999000Z", "not notified (overdue)",
         "1 ms"),
        ("b-due-at-end", None, None, "2026-03-10T23:00:00Z", "not notified (pending)", None),
    ]
    breach_findings = [(f["severity"], f["code"], f["evidence_event_ids"])
                       for f in doc["data"]["findings"] if "breach" in f["code"]]
    assert breach_findings == [
        ("critical", "breach_notified_late", [3]),
        ("critical", "breach_notified_late", [4]),
        ("critical", "breach_not_notified", [6]),
        ("warning", "breach_not_notified", [5]),
    ]
    # the section rolls each rule up; its severity is the rule's most severe
    rolled = [(f["severity"], f["code"], f["evidence_event_ids"], [r["subject"] for r in f["subjects"]["rows"]])
              for f in section(doc, "findings")["findings"] if "breach" in f["code"]]
    assert rolled == [
        ("critical", "breach_notified_late", [3, 4],
         ["Breach b-after notified late", "Breach b-179s notified late"]),
        ("critical", "breach_not_notified", [6, 5],
         ["Breach b-due-before-end not yet notified", "Breach b-due-at-end not yet notified"]),
    ]
    late = next(f for f in doc["data"]["findings"] if f["evidence_event_ids"] == [3])
    assert late["detail"] == ("Notified at 2026-03-10T12:00:00.001000Z, 1 ms after the 72-hour "
                              "deadline (2026-03-10T12:00:00Z); 72 hours after awareness "
                              "(Art. 33(1)).")
    assert doc["data"]["breaches"]["late"] == 2 and doc["data"]["breaches"]["not_notified"] == 2


def test_dsr_deadline_compares_instants(edge_db):
    load(edge_db, CLOCK_ROWS)
    doc = build(edge_db, "gdpr_processing_activities")
    assert rows(doc, "dsr_overdue") == [
        # completed at the window end: after the period, so still open at its end
        {"event_id": 15, "request_id": "r-late", "request_type": "portability",
         "received_utc": "2026-01-02T10:00:00.000Z", "deadline_utc": "2026-02-01T10:00:00.000Z",
         "open_past_deadline": "37 d 13 h"},
        {"event_id": 12, "request_id": "r-past", "request_type": "erasure",
         "received_utc": "2026-02-08T22:59:59.999Z", "deadline_utc": "2026-03-10T22:59:59.999Z",
         "open_past_deadline": "1 ms"},
    ]
    by_type = {r["request_type"]: (r["received"], r["completed"], r["overdue"])
               for r in rows(doc, "data_subject_requests")}
    assert by_type["access"] == (0, 1, 0)  # r-at is due exactly at the end: not overdue yet
    assert by_type["erasure"] == (0, 0, 1)
    assert by_type["portability"] == (0, 0, 1)
    assert summary(doc)["Requests open past deadline"] == 2
    dsr_finding = next(f for f in section(doc, "findings")["findings"] if f["code"] == "dsr_overdue")
    assert dsr_finding["evidence_event_ids"] == [15, 12]


# ------------------------------------------------------------------ sliding 60-minute window


def _reads(first_id, principal, times):
    return [(first_id + i, A, t, principal, "fhir.patient.read", "Patient", f"Patient/{principal}-p",
             OK, "PHI", {"patient_id": f"{principal}-p"}) for i, t in enumerate(times)]


T0 = ts("2026-03-10T07:31:00Z")
BURST_A = [T0 + timedelta(seconds=29 * i) for i in range(120)]      # 07:31:00 .. 08:28:31
BURST_B = BURST_A[:119]                                              # one short of the threshold
BURST_C = ([ts("2026-03-10T10:00:00Z") + timedelta(seconds=30 * i) for i in range(119)]
           + [ts("2026-03-10T11:00:00Z")])                           # first to last: exactly 60 min
BURST_D = ([ts("2026-03-10T12:00:00Z") + timedelta(seconds=30 * i) for i in range(119)]
           + [ts("2026-03-10T12:59:59.999Z")])                       # 60 min less 1 ms
BURST_ROWS = (_reads(1000, "usr-a", BURST_A) + _reads(2000, "usr-b", BURST_B)
              + _reads(3000, "usr-c", BURST_C) + _reads(4000, "usr-d", BURST_D))


def test_bulk_reads_slide_across_the_hour(edge_db):
    # usr-a's burst straddles 08:00 UTC: no clock hour holds more than 60 of its 120 reads
    assert max(Counter(t.hour for t in BURST_A).values()) == 60
    load(edge_db, BURST_ROWS)
    doc = build(edge_db, "hipaa_audit_trail", bulk_access_threshold=120)
    assert rows(doc, "bulk_reads") == [
        {"principal_id": "usr-a", "window_start_utc": "2026-03-10T07:31:00.000Z",
         "window_start_local": "2026-03-10T08:31:00+01:00",
         "last_read_utc": "2026-03-10T08:28:31.000Z", "reads": 120},
        {"principal_id": "usr-d", "window_start_utc": "2026-03-10T12:00:00.000Z",
         "window_start_local": "2026-03-10T13:00:00+01:00",
         "last_read_utc": "2026-03-10T12:59:59.999Z", "reads": 120},
    ]
    assert codes(doc, "anomalies") == [
        ("bulk_read", "Bulk PHI reads: usr-a", list(range(1000, 1010))),
        ("bulk_read", "Bulk PHI reads: usr-d", list(range(4000, 4010))),
    ]
    assert doc["data"]["anomalies"][0]["detail"].startswith(
        "usr-a read PHI 120 times within 60 minutes, from 2026-03-10T07:31:00.000Z to "
        "2026-03-10T08:28:31.000Z UTC")
    assert doc["data"]["bulk_access"]["window_reads"]["total"] == 2
    # one read fewer per window: usr-c (119 in its busiest window) still is not flagged, and
    # usr-a, usr-b and usr-d (119 within 60 minutes) now are
    lower = build(edge_db, "hipaa_audit_trail", bulk_access_threshold=119)
    assert [(r["principal_id"], r["reads"], r["window_start_utc"]) for r in rows(lower, "bulk_reads")] == [
        ("usr-a", 120, "2026-03-10T07:31:00.000Z"),
        ("usr-d", 120, "2026-03-10T12:00:00.000Z"),
        ("usr-b", 119, "2026-03-10T07:31:00.000Z"),
        ("usr-c", 119, "2026-03-10T10:00:00.000Z"),
    ]


def test_bulk_reads_at_one_instant_fit_one_window_whatever_their_order(edge_db):
    """The principals' reads are ordered by timestamp alone: equal timestamps in any order
    give the same N-th timestamp."""
    from sqlalchemy import event

    load(edge_db, _reads(5000, "usr-e", [T0] * 120) + _reads(6000, "usr-f", [T0] * 119))
    statements: list[str] = []

    @event.listens_for(edge_db, "before_cursor_execute")
    def _seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    doc = build(edge_db, "hipaa_audit_trail", bulk_access_threshold=120)
    event.remove(edge_db, "before_cursor_execute", _seen)
    assert [(r["principal_id"], r["reads"]) for r in rows(doc, "bulk_reads")] == [("usr-e", 120)]
    lead = next(s for s in statements if "lead(" in s)
    assert re.search(r"ORDER BY \w+\.timestamp\)", lead)


# ------------------------------------------------------------------ thresholds: at least N


@pytest.mark.parametrize("above", [0, 1])
def test_every_threshold_flags_a_count_equal_to_it(edge_db, above):
    """GOLDEN holds usr-2 with 3 failed logins and 3 denied PHI events, usr-1 with 3 distinct
    patients, an export of 500 records: each threshold set exactly there, then one above."""
    load(edge_db, GOLDEN)
    doc = build(edge_db, "hipaa_audit_trail", failed_login_threshold=3 + above,
                denied_access_threshold=3 + above, distinct_patients_threshold=3 + above,
                bulk_access_threshold=500 + above)
    found = [(code, title) for code, title, _ in codes(doc, "anomalies")]
    if above:
        assert found == []
    else:
        assert found == [
            ("failed_logins", "Repeated failed logins: usr-2"),
            ("bulk_export", "Bulk exports"),
            ("many_patients", "Many distinct patients: usr-1"),
            ("denied_access", "Repeated denied PHI access: usr-2"),
        ]
    description = section(doc, "anomalies")["description"]
    assert description.startswith("Every threshold means at least N")
    assert f"at least {3 + above} distinct patients" in description


# ------------------------------------------------------------------ authentication kinds


def _auth(event_id, principal, action, status):
    return (event_id, A, f"2026-03-10T09:{event_id:02d}:00Z", principal, action, "Session",
            None, status, "INTERNAL", {})


AUTH_ROWS = [
    _auth(1, "usr-1", "auth.login", OK), _auth(2, "usr-1", "auth.login", OK),
    _auth(3, "usr-1", "auth.logout", OK), _auth(4, "usr-1", "auth.logout", OK),
    _auth(5, "usr-1", "auth.logout", OK),
    _auth(6, "usr-1", "auth.mfa.challenge", OK), _auth(7, "usr-1", "auth.mfa.challenge", OK),
    _auth(8, "usr-2", "auth.login", FAIL), _auth(9, "usr-2", "auth.login", FAIL),
    _auth(10, "usr-2", "auth.login", FAIL),
    # four failed MFA challenges: not failed logins, so usr-3 is not flagged
    _auth(11, "usr-3", "auth.mfa.challenge", FAIL), _auth(12, "usr-3", "auth.mfa.challenge", FAIL),
    _auth(13, "usr-3", "auth.mfa.challenge", FAIL), _auth(14, "usr-3", "auth.mfa.challenge", FAIL),
    _auth(15, "usr-3", "auth.account.locked", OK),
    _auth(16, "usr-1", "auth.token.refresh", OK),
    _auth(17, "usr-4", "auth.login", "attempt"),
    _auth(18, "usr-1", "auth.2fa.verify", OK),
]


def test_authentication_kinds_are_separate_figures(edge_db):
    load(edge_db, AUTH_ROWS)
    doc = build(edge_db, "hipaa_audit_trail", failed_login_threshold=3)
    assert facts(doc, "authentication") == {
        "Successful logins": 2,           # not the 10 successes of every auth.* action
        "Failed logins": 3,               # not the 7 failures including MFA
        "Login attempts without outcome": 1,
        "MFA challenges passed": 2,
        "MFA challenges failed": 4,
        "Logouts": 3,
        "Account lockouts": 1,
        "Other authentication events": 2,  # auth.token.refresh, auth.2fa.verify
        "Principals with failed logins": 1,
        "Principals with at least 3 failed logins": 1,
    }
    assert "Login (auth.login, auth.login.*)" in section(doc, "authentication")["description"]
    assert summary(doc)["Failed logins"] == 3
    assert codes(doc, "anomalies") == [("failed_logins", "Repeated failed logins: usr-2", [8, 9, 10])]
    general = build(edge_db, "general_compliance")
    assert [(r["category"], r["events"], r["failures"]) for r in rows(general, "by_category")] == [
        ("login", 6, 3), ("mfa", 6, 4), ("logout", 3, 0), ("lockout", 1, 0),
        ("authentication", 2, 0),
    ]


def test_authentication_kinds_are_overridable_per_report(edge_db):
    load(edge_db, AUTH_ROWS)
    doc = build(edge_db, "hipaa_audit_trail",
                action_categories={"mfa": ["auth.mfa.*", "auth.2fa.*"]})
    figures = facts(doc, "authentication")
    assert figures["MFA challenges passed"] == 3
    assert figures["Other authentication events"] == 1
    assert "mfa: auth.mfa.*, auth.2fa.*" in facts(doc, "scope")["Action categories"]


# ------------------------------------------------------------------ accounting of disclosures

N_DISCLOSURES = 205


def _disclosure(i):
    return (i, A, ts("2026-03-10T08:00:00Z") + timedelta(seconds=10 * i), f"usr-{i % 7}",
            "phi.disclosure" if i % 2 else "record.share", "Patient", f"Patient/p{i:03d}", OK,
            "PHI", {"recipient": {"name": f"rcpt{i:03d}", "organization": "Clinic"},
                    "purpose": f"purp{i:03d}", "patient_id": f"p{i:03d}"})


DISCLOSURE_ROWS = [_disclosure(i) for i in range(1, N_DISCLOSURES + 1)]


def test_accounting_of_disclosures_is_complete_in_every_format(engine, pg_engine, tmp_path):
    # built on both backends (the same bytes), rendered once: a PDF this long is slow to lay out
    load(engine, DISCLOSURE_ROWS)
    load(pg_engine, DISCLOSURE_ROWS)
    doc = build(engine, "hipaa_audit_trail")
    assert canonical_json(doc) == canonical_json(build(pg_engine, "hipaa_audit_trail"))
    table = section(doc, "disclosures")
    assert table["complete"] is True and table["note"] is None
    assert table["total_rows"] == len(table["rows"]) == N_DISCLOSURES
    assert summary(doc)["Disclosures"] == N_DISCLOSURES
    assert table["rows"][-1] == {
        "event_id": 205, "date": "2026-03-10T08:34:10.000Z", "date_local": "2026-03-10T09:34:10+01:00",
        "recipient": "rcpt205 (Clinic)", "resource": "Patient/p205", "patient_id": "p205",
        "purpose": "purp205", "principal_id": "usr-2", "action": "phi.disclosure",
        "status": "success"}

    # JSON: the document as written
    written = json.loads(write_json(doc, tmp_path / "report.json").read_text("utf-8"))
    disclosures = section(written, "disclosures")["rows"]
    assert [r["event_id"] for r in disclosures] == list(range(1, N_DISCLOSURES + 1))
    assert [(r["recipient"], r["purpose"], r["resource"], r["principal_id"]) for r in disclosures] == [
        (f"rcpt{i:03d} (Clinic)", f"purp{i:03d}", f"Patient/p{i:03d}", f"usr-{i % 7}")
        for i in range(1, N_DISCLOSURES + 1)]
    assert len(written["data"]["disclosures"]["rows"]) == N_DISCLOSURES

    # XML
    root = ET.parse(write_xml(doc, None, tmp_path / "report.xml", False)).getroot()
    xml_rows = root.find("sections/section[@id='disclosures']/rows")
    assert xml_rows.get("count") == xml_rows.get("totalRows") == str(N_DISCLOSURES)
    assert len(xml_rows) == N_DISCLOSURES

    # PDF: every row, in an appendix, read back as text (a PDF-only publication: no other file
    # holds the table, so the PDF does not shorten it; exporters/pdf_cap.py)
    pdf = write_pdf(doc, None, tmp_path / "report.pdf", formats=["pdf"])
    pages = PdfReader(str(pdf)).pages
    text = "\n".join(page.extract_text() for page in pages)
    letter = appendices(doc)["disclosures"]
    heading = f"Appendix {letter}: Accounting of disclosures"
    first = next(p for p in pages[1:] if heading in p.extract_text())
    assert first.mediabox.width > first.mediabox.height  # the wide table gets landscape pages
    # page 1 says where it is; the appendix comes after the main body
    assert f"{heading}: the complete list, {N_DISCLOSURES} rows" in pages[0].extract_text()
    assert text.index(heading + "\n") > text.index("Review and attestation")
    tokens = set(re.findall(r"(?:rcpt|purp|p)\d{3}", text))
    for i in range(1, N_DISCLOSURES + 1):
        assert {f"rcpt{i:03d}", f"purp{i:03d}", f"p{i:03d}"} <= tokens, i
    assert f"{N_DISCLOSURES} rows: the complete list." in text


def test_a_complete_table_cannot_be_capped():
    with pytest.raises(ValueError, match="complete"):
        rd.table("disclosures", "Accounting", [("n", "N")], [{"n": 1}], total_rows=2, complete=True)
    document_section = rd.table("disclosures", "Accounting", [("n", "N")], [{"n": 1}], complete=True)
    document_section["total_rows"] = 2
    doc = {"schema_version": rd.SCHEMA_VERSION, "header": dict.fromkeys(rd.HEADER_FIELDS),
           "summary": [], "sections": [document_section], "data": {}}
    with pytest.raises(ValueError, match="complete"):
        validate_document(doc)


# ------------------------------------------------------------------ capped evidence lists


def test_a_capped_list_counts_its_rows_in_the_statement_that_picks_them(edge_db):
    """205 privileged changes: the list shows the first 200 (chain order) and says 205, with
    the total counted before LIMIT (count(*) OVER ()), not by a second statement."""
    from sqlalchemy import event

    start = ts("2026-03-10T08:00:00Z")
    load(edge_db, [(7000 + i, A, start + timedelta(seconds=i), "usr-admin", "admin.role.assign",
                    "User", f"User/u{i}", OK, "INTERNAL", {}) for i in range(205)])
    statements: list[str] = []

    @event.listens_for(edge_db, "before_cursor_execute")
    def _seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    doc = build(edge_db, "hipaa_audit_trail")
    event.remove(edge_db, "before_cursor_execute", _seen)
    changes = section(doc, "privileged_changes")
    assert changes["total_rows"] == 205
    assert [r["event_id"] for r in changes["rows"]] == list(range(7000, 7200))
    assert doc["data"]["privileged_changes"]["total"] == 205
    assert not any(re.match(r"SELECT count\(\*\) AS \w+\s+FROM report_window\b", s) for s in statements)
