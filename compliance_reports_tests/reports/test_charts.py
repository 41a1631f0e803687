"""Chart data of the documents, recomputed in Python from the golden fixture rows (local hours of
2026-03-10 in Europe/Berlin, UTC+1), and the roll-up of findings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from compliance_reports.reports.builder import build_report
from compliance_reports.reports.document import chart, finding
from compliance_reports.reports.rollup import roll_up
from compliance_reports_tests.reports.conftest import GENERATED_AT, golden_config, section
from compliance_reports_tests.reports.dataset import GOLDEN, ts

PERIOD = "2026-03-10"
START = datetime(2026, 3, 9, 23, 0, tzinfo=timezone.utc)
END = START + timedelta(hours=24)
BERLIN = ZoneInfo("Europe/Berlin")


def window_rows(org="org-a"):
    keys = ("id", "org", "time", "principal", "action", "rtype", "rid", "status", "cls", "details")
    rows = [dict(zip(keys, spec)) for spec in GOLDEN]
    return [r for r in rows if r["org"] == org and START <= ts(r["time"]) < END]


def per_local_hour(rows):
    counts = [0] * 24
    for r in rows:
        counts[ts(r["time"]).astimezone(BERLIN).hour] += 1
    return counts


def document(engine, report_type, **overrides):
    return build_report(engine, engine, golden_config(report_type, **overrides), PERIOD,
                        run_id="run-1", generated_at=GENERATED_AT).document


def series(section_, name):
    return next(s["values"] for s in section_["chart"]["series"] if s["name"] == name)


def test_hipaa_time_series_per_local_hour(golden_db):
    doc = document(golden_db, "hipaa_audit_trail")
    rows = window_rows()
    activity = section(doc, "chart_activity")
    assert activity["chart"]["categories"] == [f"{h:02d}:00" for h in range(24)]
    fails = per_local_hour([r for r in rows if r["status"] == "failure"])
    assert series(activity, "Failures") == fails
    assert [a + b for a, b in zip(series(activity, "Other outcomes"), fails)] == per_local_hour(rows)
    failed_logins = section(doc, "chart_failed_logins")
    assert series(failed_logins, "Failed logins") == per_local_hour(
        [r for r in rows if r["action"] == "auth.login" and r["status"] == "failure"])
    # after hours: 20:00-06:00 local; PHI events at 01:30, 05:00 and 21:00 local
    after = section(doc, "chart_after_hours")
    phi_after = [r for r in rows if r["cls"] == "PHI"
                 and not 6 <= ts(r["time"]).astimezone(BERLIN).hour < 20]
    assert series(after, "After-hours PHI access events") == per_local_hour(phi_after)
    assert sum(series(after, "After-hours PHI access events")) == 3
    assert after["alt"].startswith("Bar chart of after-hours PHI access events per hour: 3 in total")
    top = section(doc, "chart_top_principals")
    phi = {}
    for r in rows:
        if r["cls"] == "PHI":
            phi[r["principal"]] = phi.get(r["principal"], 0) + 1
    expected = sorted(phi.items(), key=lambda kv: (-kv[1], kv[0]))
    assert top["chart"]["categories"] == [p for p, _ in expected]
    assert [a + b for a, b in zip(series(top, "Other outcomes"), series(top, "Failures"))] == [
        n for _, n in expected]


def test_integrity_chart_counts_every_row_and_marks_empty_hours(golden_db):
    doc = document(golden_db, "integrity_verification", criteria={"statuses": ["failure"]})
    cov = section(doc, "chart_coverage")
    assert series(cov, "Rows") == per_local_hour(window_rows())
    empty = sum(1 for v in series(cov, "Rows") if v == 0)
    assert f"{empty} of 24 hours without rows" in cov["alt"]


def test_gdpr_open_requests_by_age(golden_db):
    doc = document(golden_db, "gdpr_processing_activities")
    age = section(doc, "chart_dsr_age")
    # open at the period's end: r0 (received 2026-01-15T10:00Z, never completed); r00 and r1
    # were completed
    days = (END - ts("2026-01-15T10:00:00Z")) / timedelta(days=1)
    assert 44 <= days < 60
    labels = age["chart"]["categories"]
    assert labels == ["0-7 d", "7-14 d", "14-21 d", "21-30 d", "30-44 d", "44-60 d", "over 60 d"]
    assert series(age, "Past the deadline") == [0, 0, 0, 0, 0, 1, 0]
    assert series(age, "Within the deadline") == [0] * 7
    assert age["chart"]["reference"] == {"label": "Deadline (30 days)", "at": "30-44 d"}


def test_weekly_charts_have_a_bar_per_local_day(engine):
    from compliance_reports_tests.reports.dataset import load

    load(engine, GOLDEN)
    report = golden_config("general_compliance", schedule={"frequency": "weekly",
                                                           "timezone": "Europe/Berlin",
                                                           "day_of_week": "monday"})
    doc = build_report(engine, engine, report, "2026-03-09", run_id=None,
                       generated_at=GENERATED_AT).document
    activity = section(doc, "chart_activity")
    assert activity["chart"]["categories"] == ["Mon 09 Mar", "Tue 10 Mar", "Wed 11 Mar",
                                               "Thu 12 Mar", "Fri 13 Mar", "Sat 14 Mar", "Sun 15 Mar"]
    by_day = [0] * 7
    keys = ("id", "org", "time")
    for spec in GOLDEN:
        row = dict(zip(keys, spec))
        local = ts(row["time"]).astimezone(BERLIN).date()
        if row["org"] == "org-a" and 0 <= (local - datetime(2026, 3, 9).date()).days < 7:
            by_day[(local - datetime(2026, 3, 9).date()).days] += 1
    totals = [a + b for a, b in zip(series(activity, "Other outcomes"), series(activity, "Failures"))]
    assert totals == by_day and sum(by_day) == 3 + 28 + 1  # the 9th, the 10th, 00:00 on the 11th


def test_chart_sections_are_checked():
    with pytest.raises(ValueError, match="has 2 values for 3 categories"):
        chart("c", "C", "bar", ["a", "b", "c"], [{"name": "n", "values": [1, 2]}],
              alt="x", x_label="x", y_label="y")
    with pytest.raises(ValueError, match="chart type"):
        chart("c", "C", "pie", [], [], alt="x", x_label="x", y_label="y")


def test_roll_up_one_finding_per_rule():
    items = [
        finding("warning", "failed_logins", "Repeated failed logins: usr-1",
                "usr-1 failed 9 times (threshold: at least 5).", [1, 2], subject="usr-1", measure=9),
        finding("info", "note", "A note", "detail", []),
        finding("critical", "failed_logins", "Repeated failed logins: usr-2",
                "usr-2 failed 7 times (threshold: at least 5).", [3, 2], subject="usr-2", measure=7),
        finding("info", "failed_logins_more", "Repeated failed logins: 4 more", "...", [], measure=4),
    ]
    rolled = roll_up(items)
    assert [(f["severity"], f["code"]) for f in rolled] == [("critical", "failed_logins"),
                                                             ("info", "note")]
    top = rolled[0]
    assert top["title"] == "Repeated failed logins"
    assert top["detail"] == ("6 principals or resources meet this rule (threshold: at least 5). "
                             "The first 2 are listed.")
    assert top["evidence_event_ids"] == [1, 2, 3]
    assert top["subjects"]["total"] == 6
    assert top["subjects"]["rows"] == [{"subject": "usr-1", "measure": 9, "evidence": "1, 2"},
                                       {"subject": "usr-2", "measure": 7, "evidence": "3, 2"}]
    # a single finding of a rule is left as it is
    assert roll_up([items[1]]) == [items[1]]


def test_postgresql_groups_the_timeline_by_truncated_hour_and_formats_each_group_once():
    from sqlalchemy import func, select
    from sqlalchemy.dialects import postgresql

    from compliance_reports.db.schema import audit_log
    from compliance_reports.reports.sql_constructs import utc_hour, utc_hour_start

    hour = utc_hour_start(audit_log.c.timestamp)
    sql = str(select(utc_hour(hour), func.count()).group_by(hour).compile(dialect=postgresql.dialect()))
    grouped_by = sql.split("GROUP BY")[1]
    assert "date_trunc('hour'" in grouped_by and "to_char" not in grouped_by
