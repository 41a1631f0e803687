"""Coverage in every report and the NO_DATA verdict, with rows placed on the edges, on SQLite
and on PostgreSQL (``coverage_db``). Every expected figure is worked out by hand from the rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from compliance_reports.artifacts.store import LocalArtifactStore
from compliance_reports.db.schema import integrity_checkpoints
from compliance_reports.reports.builder import build_report
from compliance_reports.reports.document import canonical_json, validate_document
from compliance_reports.reports.run import build_and_store, commit_checkpoint
from compliance_reports_tests.reports.conftest import facts, golden_config, section, summary
from compliance_reports_tests.reports.dataset import load, ts

KEY = b"coverage-checkpoint-key"
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
TYPES = ["general_compliance", "hipaa_audit_trail", "gdpr_processing_activities",
         "integrity_verification", "custom"]


def _event(i: int, when: datetime | str, org: str = "org-a"):
    when = ts(when) if isinstance(when, str) else when
    return (i, org, when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "usr-1", "fhir.patient.read",
            "Patient", f"Patient/p{i % 7}", "success", "PHI", {"patient_id": f"p{i % 7}"})


def _every(hours: float, start: str, end: str, first_id: int, org: str = "org-a",
           skip: tuple[str, str] | None = None) -> list:
    """One event every ``hours`` in [start, end), none in [skip) when given."""
    rows, when, i = [], ts(start), first_id
    gap = (ts(skip[0]), ts(skip[1])) if skip else None
    while when < ts(end):
        if not (gap and gap[0] <= when < gap[1]):
            rows.append(_event(i, when, org))
            i += 1
        when += timedelta(hours=hours)
    return rows


@pytest.fixture(params=["sqlite", "postgresql"])
def coverage_db(request):
    return request.getfixturevalue("engine" if request.param == "sqlite" else "pg_engine")


def build(engine, report_type, period, frequency, *, tz="Europe/Berlin", sign=False, **options):
    schedule = {"frequency": frequency, "timezone": tz}
    if frequency == "weekly":
        schedule["day_of_week"] = "monday"
    report = golden_config(report_type, schedule=schedule, options=options)
    result = build_report(engine, engine, report, period, run_id=None, generated_at=NOW,
                          checkpoint_key=KEY, sign_checkpoint=sign)
    validate_document(result.document)
    return result


def checkpoint_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(integrity_checkpoints)).scalar_one()


def findings(document) -> list[tuple[str, str, list]]:
    return [(f["severity"], f["code"], f["evidence_event_ids"])
            for f in section(document, "coverage_findings")["findings"]]


# ------------------------------------------------------------------ an empty quarter

QUARTERS = [
    _event(1, "2026-03-30T10:00:00Z"),                 # Q1 (Berlin)
    _event(2, "2026-07-01T08:00:00Z"),                 # Q3: nothing in between
    _event(3, "2026-07-02T08:00:00Z"),
    _event(90, "2026-05-15T10:00:00Z", org="org-b"),   # another organization is busy in Q2
]


def test_empty_quarter_is_no_data_and_signs_no_checkpoint(coverage_db, tmp_path):
    load(coverage_db, QUARTERS)
    report = golden_config("integrity_verification",
                           schedule={"frequency": "quarterly", "timezone": "Europe/Berlin"})
    stored = build_and_store(audit_engine=coverage_db, app_engine=coverage_db,
                             store=LocalArtifactStore(tmp_path / "artifacts"), report=report,
                             period="2026-04-01", run_id="run-q2", generated_at=NOW,
                             scratch=tmp_path, checkpoint_key=KEY)
    assert commit_checkpoint(coverage_db, stored) is None
    assert checkpoint_count(coverage_db) == 0
    doc = stored.document
    assert stored.build.integrity_verdict == "NO_DATA"
    assert facts(doc, "verdict")["Verdict"] == "NO_DATA"
    assert facts(doc, "verdict")["Reason"] == (
        "the organization has no audit rows in the window: there is nothing to verify")
    assert doc["data"]["checkpoint_written"] is None
    assert "no checkpoint written: the window has no rows to vouch for" in doc["data"]["notes"]
    coverage = doc["data"]["coverage"]
    # Q2 in Berlin: 2026-03-31T22:00Z .. 2026-06-30T22:00Z, 91 days, all in summer time.
    assert (coverage["status"], coverage["events"], coverage["unit"]) == ("no_data", 0, "day")
    assert (coverage["units_in_window"], coverage["units_without_events"]) == (91, 91)
    assert coverage["longest_silence"]["hours"] == 91 * 24
    assert coverage["longest_silence"]["kind"] == "whole"
    assert coverage["first_event"] is None and coverage["covered_from_utc"] is None
    assert findings(doc) == [("warning", "coverage_no_data", [])]
    assert summary(doc)["Verdict"] == "NO_DATA" and summary(doc)["Coverage"] == "no events"

    # The quarter after it has rows: it verifies and its checkpoint is stored on commit.
    stored = build_and_store(audit_engine=coverage_db, app_engine=coverage_db,
                             store=LocalArtifactStore(tmp_path / "artifacts"), report=report,
                             period="2026-07-01", run_id="run-q3", generated_at=NOW,
                             scratch=tmp_path, checkpoint_key=KEY)
    assert stored.build.integrity_verdict == "VERIFIED"
    assert commit_checkpoint(coverage_db, stored) == 1
    assert checkpoint_count(coverage_db) == 1


@pytest.mark.parametrize("report_type", TYPES)
def test_every_type_says_no_data_for_an_empty_quarter(engine, report_type):
    load(engine, QUARTERS)
    doc = build(engine, report_type, "2026-04-01", "quarterly").document
    assert doc["data"]["coverage"]["status"] == "no_data"
    assert summary(doc)["Coverage"] == "no events"
    assert summary(doc)["Longest silence (hours)"] == 2184
    assert findings(doc) == [("warning", "coverage_no_data", [])]
    ids = [s["id"] for s in doc["sections"]]
    # findings first (the type's own, then coverage), charts, then scope and coverage
    assert "coverage_findings" in ids[:2]
    analysis = [i for i in ids if i != "coverage_findings" and not i.startswith("chart_")
                and i not in ("anomalies", "findings")]
    assert analysis[:2] == ["scope", "coverage"]


# ------------------------------------------------------------------ a half-covered month

# The organization's log starts on 2026-06-16 at 00:00Z (02:00 in Berlin) and then has an
# event every 2 hours into August; June's window is 2026-05-31T22:00Z .. 2026-06-30T22:00Z.
HALF = _every(2, "2026-06-16T00:00:00Z", "2026-08-02T00:00:00Z", 1)


def test_month_whose_log_starts_mid_month_is_partial(coverage_db):
    load(coverage_db, HALF)
    result = build(coverage_db, "general_compliance", "2026-06-01", "monthly")
    doc = result.document
    coverage = doc["data"]["coverage"]
    assert coverage["status"] == "partial" and coverage["covers_whole_window"] is False
    assert coverage["log_starts_before_window"] is False
    assert coverage["first_event"] == {"event_id": 1, "time_utc": "2026-06-16T00:00:00.000Z",
                                       "time_local": "2026-06-16T02:00:00+02:00"}
    assert coverage["covered_from_utc"] == "2026-06-16T00:00:00.000Z"
    assert coverage["covered_to_utc"] == "2026-06-30T22:00:00.000Z"
    # June 1..15 (local) have no event; June 16 has (from 02:00 local).
    assert (coverage["units_in_window"], coverage["units_without_events"]) == (30, 15)
    assert coverage["without_events"] == [{
        "start_utc": "2026-05-31T22:00:00.000Z", "end_utc": "2026-06-15T22:00:00.000Z",
        "start_local": "2026-06-01T00:00:00+02:00", "end_local": "2026-06-16T00:00:00+02:00",
        "units": 15}]
    silence = coverage["longest_silence"]
    assert (silence["kind"], silence["hours"], silence["start_utc"], silence["end_utc"]) == (
        "head", 15 * 24 + 2, "2026-05-31T22:00:00.000Z", "2026-06-16T00:00:00.000Z")
    # The head silence is explained by the late start: one finding, not two.
    assert findings(doc) == [("warning", "coverage_partial", [1])]
    assert "begins inside the window" in section(doc, "coverage_findings")["findings"][0]["title"]
    assert summary(doc)["Coverage"] == "partial"
    assert facts(doc, "coverage")["Days without events"] == 15
    assert result.integrity_verdict == "VERIFIED"   # a partial log can still be intact

    july = build(coverage_db, "general_compliance", "2026-07-01", "monthly").document
    assert july["data"]["coverage"]["status"] == "complete"
    assert findings(july) == []


def test_month_whose_log_stops_mid_month_is_partial(coverage_db):
    # Events every 2 hours up to 2026-06-10T20:00Z, then nothing more at all.
    load(coverage_db, _every(2, "2026-05-20T00:00:00Z", "2026-06-10T21:00:00Z", 1))
    doc = build(coverage_db, "hipaa_audit_trail", "2026-06-01", "monthly").document
    coverage = doc["data"]["coverage"]
    last_id = coverage["last_event"]["event_id"]
    assert coverage["last_event"]["time_utc"] == "2026-06-10T20:00:00.000Z"
    assert coverage["status"] == "partial" and coverage["log_continues_after_window"] is False
    assert coverage["covered_to_utc"] == "2026-06-10T20:00:00.000Z"
    assert coverage["longest_silence"]["kind"] == "tail"
    assert coverage["longest_silence"]["hours"] == 20 * 24 + 2   # to 2026-06-30T22:00Z
    assert findings(doc) == [("warning", "coverage_partial", [last_id])]


# ------------------------------------------------------------------ a 30-hour silence in a week

# Week of Monday 2026-06-08 in Berlin: 2026-06-07T22:00Z .. 2026-06-14T22:00Z. Hourly events at
# :30 from the week before to the week after, except none from 2026-06-10T18:30Z (20:30 Wed,
# local) to 2026-06-12T00:30Z (02:30 Fri): exactly 30 hours, Thursday (local) without events.
WEEK = _every(1, "2026-06-01T00:30:00Z", "2026-06-20T00:00:00Z", 1,
              skip=("2026-06-10T19:00:00Z", "2026-06-12T00:00:00Z"))
BEFORE_GAP = next(r[0] for r in WEEK if r[2] == "2026-06-10T18:30:00.000000Z")
AFTER_GAP = next(r[0] for r in WEEK if r[2] == "2026-06-12T00:30:00.000000Z")


@pytest.mark.parametrize("limit, expected", [(24, 1), (29, 1), (30, 0), (36, 0)])
def test_thirty_hour_silence_in_a_week(coverage_db, limit, expected):
    load(coverage_db, WEEK)
    doc = build(coverage_db, "integrity_verification", "2026-06-08", "weekly",
                max_silence_hours=limit).document
    coverage = doc["data"]["coverage"]
    assert coverage["status"] == "complete"
    assert (coverage["unit"], coverage["units_in_window"], coverage["units_without_events"]) == (
        "day", 7, 1)
    assert coverage["without_events"][0]["start_local"] == "2026-06-11T00:00:00+02:00"
    silence = coverage["longest_silence"]
    assert (silence["kind"], silence["hours"], silence["seconds"]) == ("gap", 30, 108000.0)
    assert (silence["after_event_id"], silence["before_event_id"]) == (BEFORE_GAP, AFTER_GAP)
    assert silence["start_local"] == "2026-06-10T20:30:00+02:00"
    assert coverage["silences_over_limit"] == expected
    # "longer than" the limit: exactly 30 hours is not longer than 30
    assert findings(doc) == [("warning", "coverage_silence", [BEFORE_GAP, AFTER_GAP])] * expected
    assert doc["data"]["verdict"] == "VERIFIED"
    assert summary(doc)["Longest silence (hours)"] == 30


def test_equal_silences_pick_the_earliest_on_both_backends(engine, pg_engine):
    # Two silences of exactly 30 hours: both backends report the first one.
    rows = _every(1, "2026-06-01T00:30:00Z", "2026-06-20T00:00:00Z", 1,
                  skip=("2026-06-08T19:00:00Z", "2026-06-10T00:00:00Z"))
    rows = [r for r in rows if not ("2026-06-12T19:00:00" <= r[2] < "2026-06-14T00:00:00")]
    documents = []
    for db in (engine, pg_engine):
        load(db, rows)
        doc = build(db, "general_compliance", "2026-06-08", "weekly").document
        silence = doc["data"]["coverage"]["longest_silence"]
        assert (silence["start_utc"], silence["hours"]) == ("2026-06-08T18:30:00.000Z", 30)
        assert doc["data"]["coverage"]["silences_over_limit"] == 2
        documents.append(canonical_json(doc))
    assert documents[0] == documents[1]


# ------------------------------------------------------------------ daily reports count hours

def test_daily_report_counts_hours_without_events_on_a_25_hour_day(coverage_db):
    # 2026-10-25 in Berlin is 25 hours long (2026-10-24T22:00Z .. 2026-10-25T23:00Z).
    load(coverage_db, [
        _event(1, "2026-10-24T12:00:00Z"),
        _event(2, "2026-10-25T00:15:00Z"),     # third hour (02:00 local, first time)
        _event(3, "2026-10-25T01:45:00Z"),     # fourth hour (02:00 local, second time)
        _event(4, "2026-10-25T22:59:59.999Z"),  # last hour
        _event(5, "2026-10-26T08:00:00Z"),
    ])
    doc = build(coverage_db, "custom", "2026-10-25", "daily").document
    coverage = doc["data"]["coverage"]
    assert (coverage["unit"], coverage["units_in_window"], coverage["units_without_events"]) == (
        "hour", 25, 22)
    assert [(r["start_local"], r["units"]) for r in coverage["without_events"]] == [
        ("2026-10-25T00:00:00+02:00", 2), ("2026-10-25T03:00:00+01:00", 20)]
    silence = coverage["longest_silence"]
    assert (silence["start_utc"], silence["end_utc"]) == ("2026-10-25T01:45:00.000Z",
                                                          "2026-10-25T22:59:59.999Z")
    assert silence["seconds"] == 76499.999
    assert facts(doc, "coverage")["Hours without events"] == 22
    assert findings(doc) == []


def test_golden_day_hours_without_events(golden_db):
    # dataset.GOLDEN, org-a, 2026-03-10 in Berlin (23:00Z .. 23:00Z): events in the UTC hours
    # 00, 04, 07-17, 20 and 22; none in 23 (the day before), 01-03, 05-06, 18-19 and 21.
    doc = build_report(golden_db, golden_db, golden_config("general_compliance"), "2026-03-10",
                       run_id=None, generated_at=NOW).document
    coverage = doc["data"]["coverage"]
    assert (coverage["unit"], coverage["units_in_window"], coverage["units_without_events"]) == (
        "hour", 24, 9)
    assert [(r["start_local"], r["end_local"], r["units"]) for r in coverage["without_events"]] == [
        ("2026-03-10T00:00:00+01:00", "2026-03-10T01:00:00+01:00", 1),
        ("2026-03-10T02:00:00+01:00", "2026-03-10T05:00:00+01:00", 3),
        ("2026-03-10T06:00:00+01:00", "2026-03-10T08:00:00+01:00", 2),
        ("2026-03-10T19:00:00+01:00", "2026-03-10T21:00:00+01:00", 2),
        ("2026-03-10T22:00:00+01:00", "2026-03-10T23:00:00+01:00", 1),
    ]
    assert (coverage["first_event"]["event_id"], coverage["last_event"]["event_id"]) == (10, 37)
    assert coverage["last_event"]["time_utc"] == "2026-03-10T22:59:59.999Z"
    silence = coverage["longest_silence"]
    assert (silence["after_event_id"], silence["before_event_id"], silence["hours"]) == (10, 11, 3.5)
    assert coverage["status"] == "complete" and findings(doc) == []
    # org-b's events at 21:00Z do not fill org-a's empty hour 21
    assert facts(doc, "coverage")["Without events (local)"].endswith(
        "2026-03-10 22:00 to 2026-03-10 23:00 (1 hour)")


def test_more_long_silences_than_listed_are_counted(coverage_db):
    # An event every 30 hours from 2026-06-30T00:00Z: Q3 (UTC) holds k = 1..74, so 73 gaps of
    # 30 hours, a 6-hour head (to 07-01T06:00Z) and a 12-hour tail (from 09-30T12:00Z).
    load(coverage_db, _every(30, "2026-06-30T00:00:00Z", "2026-10-05T00:00:00Z", 1))
    doc = build(coverage_db, "general_compliance", "2026-07-01", "quarterly", tz="UTC").document
    coverage = doc["data"]["coverage"]
    assert coverage["events"] == 74 and coverage["status"] == "complete"
    assert coverage["silences_over_limit"] == 73
    assert len(coverage["long_silences"]) == 10
    silence = coverage["longest_silence"]
    assert (silence["start_utc"], silence["end_utc"], silence["hours"]) == (
        "2026-07-01T06:00:00.000Z", "2026-07-02T12:00:00.000Z", 30)
    assert (silence["after_event_id"], silence["before_event_id"]) == (2, 3)
    # data.coverage.findings: the 10 longest, then a note of the 63 others
    raw = coverage["findings"]
    assert [f["code"] for f in raw] == ["coverage_silence"] * 11
    assert raw[-1]["title"] == "63 more silence(s) longer than 24 hours"
    # the section: one finding for the rule, its table of silences counting all 73
    found = section(doc, "coverage_findings")["findings"]
    assert [f["code"] for f in found] == ["coverage_silence"]
    assert found[0]["title"] == "Silences longer than 24 hours"
    assert found[0]["subjects"]["total"] == 73 and len(found[0]["subjects"]["rows"]) == 10
    assert found[0]["subjects"]["rows"][0] == {
        "subject": "2026-07-01 06:00 to 2026-07-02 12:00", "measure": 30, "evidence": "2, 3"}
