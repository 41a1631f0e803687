"""The previous period's headline figures and the change against them, on the golden dataset.

Expected previous figures come from plain SQL over the fixture rows written here (organization,
window bounds, classification, action, status), not from the report code: the previous day of
period 2026-03-10 in Europe/Berlin is 2026-03-08T23:00Z .. 2026-03-09T23:00Z.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import and_, func, select

from compliance_reports.db.schema import audit_log
from compliance_reports.reports.builder import build_report
from compliance_reports_tests.reports.conftest import GENERATED_AT, golden_config

PERIOD = "2026-03-10"
PREV_START = datetime(2026, 3, 8, 23, 0, tzinfo=timezone.utc)
PREV_END = datetime(2026, 3, 9, 23, 0, tzinfo=timezone.utc)
c = audit_log.c


def previous(engine, *conditions, what=None):
    """A count (or count of distinct ``what``) over org-a's previous window, in plain SQL."""
    measure = func.count() if what is None else func.count(what.distinct())
    stmt = select(measure).select_from(audit_log).where(
        c.organization_id == "org-a", c.timestamp >= PREV_START, c.timestamp < PREV_END, *conditions)
    with engine.connect() as conn:
        return conn.execute(stmt).scalar_one()


def document(engine, report_type):
    return build_report(engine, engine, golden_config(report_type), PERIOD, run_id="run-1",
                        generated_at=GENERATED_AT).document


def figures(doc):
    return {f["label"]: f for f in doc["comparison"]["figures"]}


def expected(current, prev):
    return {"current": current, "previous": prev, "change": current - prev,
            "change_pct": round(100.0 * (current - prev) / prev, 2) if prev else None}


def test_hipaa_comparison(golden_db):
    doc = document(golden_db, "hipaa_audit_trail")
    comparison = doc["comparison"]
    assert comparison["previous_period"] == "2026-03-09"
    assert comparison["previous_period_label"] == "9 March 2026"
    assert (comparison["previous_window_start_utc"], comparison["previous_window_end_utc"]) == (
        "2026-03-08T23:00:00Z", "2026-03-09T23:00:00Z")
    phi = c.data_classification == "PHI"
    prev = {
        "PHI access events": previous(golden_db, phi),
        "Principals accessing PHI": previous(golden_db, phi, what=c.principal_id),
        # 2026-03-09 is a Monday; its only PHI event (11:00Z = 12:00 local) is in office hours
        "After-hours PHI access events": 0,
        "Failed logins": previous(golden_db, c.action == "auth.login", c.status == "failure"),
        "Disclosures": previous(golden_db, c.action.like("%disclos%")),
        "Emergency access events": previous(golden_db, c.action.like("emergency.%")),
    }
    assert prev == {"PHI access events": 1, "Principals accessing PHI": 1,
                    "After-hours PHI access events": 0, "Failed logins": 1, "Disclosures": 0,
                    "Emergency access events": 0}
    current = {item["label"]: item["value"] for item in doc["summary"]}
    assert figures(doc) == {label: {"label": label, **expected(current[label], value)}
                            for label, value in prev.items()}
    # the summary items carry the same comparison; the others carry none
    by_label = {item["label"]: item for item in doc["summary"]}
    assert by_label["PHI access events"] == {
        "label": "PHI access events", "value": 14, "previous": 1, "change": 13, "change_pct": 1300.0}
    assert by_label["Disclosures"]["change_pct"] is None  # nothing to compare with
    assert "previous" not in by_label["Integrity"] and "previous" not in by_label["Anomaly findings"]


def test_general_comparison_includes_a_rate(golden_db):
    doc = document(golden_db, "general_compliance")
    events = previous(golden_db)
    failed = previous(golden_db, c.status == "failure")
    principals = previous(golden_db, what=c.principal_id)
    assert (events, failed, principals) == (3, 1, 2)
    found = figures(doc)
    assert found["Events"] == {"label": "Events", **expected(28, events)}
    assert found["Distinct principals"] == {"label": "Distinct principals", **expected(10, principals)}
    rate = found["Failure rate"]
    assert rate["previous"] == round(failed / events, 4) == 0.3333
    assert rate["change"] == round(0.2143 - 0.3333, 4)
    assert rate["change_pct"] == round(100 * (0.2143 - 0.3333) / 0.3333, 2)
    # the general report's own change section agrees with the generic comparison
    assert doc["data"]["previous_period"]["events"] == events


def test_gdpr_comparison(golden_db):
    doc = document(golden_db, "gdpr_processing_activities")
    personal = c.data_classification.in_(["PHI", "CONFIDENTIAL"])
    prev = {
        "Personal-data processing events": previous(golden_db, personal),
        "Data-subject requests received": previous(golden_db, c.action.like("dsr.%.request")),
        "Cross-border transfers": previous(golden_db, c.action.like("data.transfer%")),
    }
    assert prev == {"Personal-data processing events": 1, "Data-subject requests received": 0,
                    "Cross-border transfers": 0}
    found = figures(doc)
    current = {item["label"]: item["value"] for item in doc["summary"]}
    for label, value in prev.items():
        assert found[label] == {"label": label, **expected(current[label], value)}, label
    # the previous day's one personal-data event has a legal basis
    assert found["Without legal basis"]["previous"] == 0
    assert found["Breaches"] == {"label": "Breaches", **expected(2, 0)}


@pytest.mark.parametrize("report_type, label", [("integrity_verification", "Rows checked"),
                                                ("custom", "Events")])
def test_integrity_and_custom_compare_rows(golden_db, report_type, label):
    doc = document(golden_db, report_type)
    assert figures(doc) == {label: {"label": label, **expected(28, previous(golden_db))}}


def test_breaches_are_counted_by_breach_id(engine):
    from compliance_reports_tests.reports.dataset import load

    # the previous day: breach b7 recorded twice, one breach without an id
    load(engine, [
        (1, "org-a", "2026-03-09T08:00:00Z", "usr-6", "security.breach.record", "Breach", "Breach/b7",
         "success", "CONFIDENTIAL", {"breach_id": "b7"}),
        (2, "org-a", "2026-03-09T09:00:00Z", "usr-6", "security.breach.update", "Breach", "Breach/b7",
         "success", "CONFIDENTIAL", {"breach_id": "b7"}),
        (3, "org-a", "2026-03-09T10:00:00Z", "usr-6", "security.breach.record", "Breach", None,
         "success", "CONFIDENTIAL", {}),
        (4, "org-a", "2026-03-10T10:00:00Z", "usr-6", "security.breach.record", "Breach", "Breach/b8",
         "success", "CONFIDENTIAL", {"breach_id": "b8"}),
    ])
    doc = document(engine, "gdpr_processing_activities")
    assert figures(doc)["Breaches"] == {"label": "Breaches", **expected(1, 2)}


def test_integrity_counts_every_row_whatever_the_criteria(golden_db):
    report = golden_config("integrity_verification", criteria={"statuses": ["failure"]})
    doc = build_report(golden_db, golden_db, report, PERIOD, run_id=None,
                       generated_at=GENERATED_AT).document
    assert figures(doc)["Rows checked"]["previous"] == previous(golden_db) == 3
    custom = golden_config("custom", criteria={"statuses": ["failure"]})
    doc = build_report(golden_db, golden_db, custom, PERIOD, run_id=None,
                       generated_at=GENERATED_AT).document
    assert figures(doc)["Events"]["previous"] == previous(golden_db, and_(c.status == "failure")) == 1
