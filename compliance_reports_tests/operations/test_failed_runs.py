"""What a failed run calls for: an alert only when nothing will retry it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from compliance_reports.config.models import ReportConfig
from compliance_reports.operations.failed_runs import FailedRun, react
from compliance_reports.scheduling import PeriodRuns, RetryRule

NOW = datetime(2026, 11, 28, 6, 5, tzinfo=timezone.utc)
RULE = RetryRule(cooldown=timedelta(hours=1), max_retries=3)
REPORT = ReportConfig.model_validate({
    "id": "daily", "name": "Daily", "organization_id": "org-1", "report_type": "general_compliance",
    "schedule": {"frequency": "daily", "time": "00:00", "timezone": "UTC", "max_catch_up": 2},
    "formats": ["json"], "notify_on_failure": [],
})


def _run(stage="report", period="2026-11-27", **kw) -> FailedRun:
    return FailedRun(run_id="run-1", stage=stage, report_id="daily", period=period, failed_at=NOW, **kw)


def _failures(n: int) -> PeriodRuns:
    return PeriodRuns(failures=n, last_failure_at=NOW)


def test_a_failure_the_schedule_retries_is_not_alerted():
    reaction = react(_run(), REPORT, _failures(1), RULE)
    assert reaction.alert is None
    assert "requests it again at 2026-11-28T07:05" in reaction.reason and "retry 1 of 3" in reaction.reason


def test_the_last_failure_is_a_gave_up_alert():
    reaction = react(_run(), REPORT, _failures(4), RULE)
    assert reaction.alert == "gave_up"
    assert "failed 4 times (3 retries" in reaction.reason and "left failed" in reaction.reason
    assert "compliance-reports run daily --period 2026-11-27" in reaction.reason


def test_crashed_runs_dagster_re_executes_and_ledger_alerted_publishes_are_not_alerted_again():
    assert react(_run(will_retry=True), REPORT, _failures(1), RULE).alert is None
    assert react(_run("publish", alerted_by_ledger=True), REPORT, PeriodRuns(), RULE).alert is None
    assert react(_run(), REPORT, PeriodRuns(in_flight=True, failures=1), RULE).alert is None


def test_failures_nothing_retries_are_alerted_at_once():
    publish = react(_run("publish"), REPORT, PeriodRuns(), RULE)
    assert publish.alert == "run" and "publish retry --report daily --period 2026-11-27" in publish.reason
    old = react(_run(period="2026-11-01"), REPORT, _failures(1), RULE)  # outside the look-back
    assert old.alert == "run" and "not retried automatically" in old.reason
    disabled = REPORT.model_copy(update={"enabled": False})
    assert react(_run(), disabled, _failures(1), RULE).alert == "run"
    rerun = react(_run(), REPORT, PeriodRuns(materialized=True, failures=1, last_failure_at=NOW), RULE)
    assert rerun.alert == "run" and "earlier report stands" in rerun.reason


def test_a_retry_that_would_fall_outside_the_look_back_is_alerted_now():
    # Daily at 00:00 with max_catch_up 2: at 23:30 on the 28th the schedule looks at the 26th
    # and the 27th; at 00:30 on the 29th, when the retry would be due, at the 27th and the 28th.
    late = FailedRun("run-2", "report", "daily", "2026-11-26", datetime(2026, 11, 28, 23, 30, tzinfo=timezone.utc))
    reaction = react(late, REPORT, PeriodRuns(failures=1, last_failure_at=late.failed_at), RULE)
    assert reaction.alert == "run" and "outside its schedule's look-back" in reaction.reason


def test_a_deleted_report_alerts_nobody():
    assert react(_run(), None, _failures(4), RULE).alert is None


def test_a_failed_publish_the_publish_sensor_retries_is_not_alerted_until_it_gives_up():
    first = react(_run("publish"), REPORT, _failures(1), RULE)
    assert first.alert is None
    assert "publish sensor requests it again at 2026-11-28T07:05" in first.reason and "retry 1 of 3" in first.reason
    last = react(_run("publish"), REPORT, _failures(4), RULE)
    assert last.alert == "gave_up" and "failed 4 times (3 retries by the publish sensor)" in last.reason
    assert "publish retry --report daily --period 2026-11-27" in last.reason
    recovered = react(_run("publish"), REPORT, PeriodRuns(materialized=True, failures=2, last_failure_at=NOW), RULE)
    assert recovered.alert is None and "succeeded" in recovered.reason


def test_a_failed_batched_backfill_is_alerted_at_once_with_the_command_for_its_range():
    # Nothing retries a backfill: with no period runs at all, the report-stage rules would
    # claim "the schedule requests it again" for a range the schedule never requests.
    reaction = react(_run(stage="backfill", period="2026-01-01..2026-01-31"), REPORT, PeriodRuns(), RULE)
    assert reaction.alert == "run"
    assert "compliance-reports backfill daily --from 2026-01-01 --to 2026-01-31" in reaction.reason
