"""The schedule tick's decision without Dagster: due periods, retries of failed ones, give-ups."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from compliance_reports.config.models import ReportConfig
from compliance_reports.scheduling import (
    PeriodRuns,
    RetryRule,
    in_schedule_horizon,
    plan_due_runs,
    retry_decision,
    run_key,
)
from compliance_reports.settings import load_settings

NOW = datetime(2026, 11, 28, 6, 5, tzinfo=timezone.utc)  # daily 00:00 UTC: the slot passed at 00:00
RULE = RetryRule(cooldown=timedelta(hours=1), max_retries=3)


def _report(report_id: str = "daily", enabled: bool = True, max_catch_up: int = 3) -> ReportConfig:
    return ReportConfig.model_validate({
        "id": report_id, "name": report_id, "organization_id": "org-1", "report_type": "general_compliance",
        "schedule": {"frequency": "daily", "time": "00:00", "timezone": "UTC", "max_catch_up": max_catch_up},
        "formats": ["json"], "enabled": enabled,
    })


def _failed(n: int, minutes_ago: float) -> PeriodRuns:
    return PeriodRuns(failures=n, last_failure_at=NOW - timedelta(minutes=minutes_ago))


def _keys(plan):
    return [(r.run_key, r.trigger) for r in plan.runs]


def test_untouched_periods_are_requested_once_each():
    plan = plan_due_runs([_report()], NOW, {}, RULE)
    assert _keys(plan) == [("daily:2026-11-25", "catch_up"), ("daily:2026-11-26", "catch_up"),
                           ("daily:2026-11-27", "schedule")]


def test_materialized_in_flight_and_cancelled_periods_are_left_alone():
    history = {"daily": {
        "2026-11-25": PeriodRuns(materialized=True),
        "2026-11-26": PeriodRuns(in_flight=True, failures=1, last_failure_at=NOW - timedelta(hours=5)),
        "2026-11-27": PeriodRuns(cancelled=True),
    }}
    assert plan_due_runs([_report()], NOW, history, RULE).runs == []


def test_failed_period_waits_for_the_cool_down_then_is_retried_with_its_own_run_key():
    waiting = plan_due_runs([_report()], NOW, {"daily": {"2026-11-27": _failed(1, 59)}}, RULE)
    assert ("daily:2026-11-27", "schedule") not in _keys(waiting)
    assert [(r, p) for r, p, _ in waiting.waiting] == [("daily", "2026-11-27")]
    assert waiting.waiting[0][2] == NOW + timedelta(minutes=1)
    assert "wait for their retry" in waiting.explain()

    due = plan_due_runs([_report()], NOW, {"daily": {"2026-11-27": _failed(1, 61)}}, RULE)
    retry = next(r for r in due.runs if r.period == "2026-11-27")
    assert (retry.run_key, retry.trigger, retry.retry) == ("daily:2026-11-27:retry1", "retry", 1)
    assert retry.tags["trigger"] == "retry"
    second = plan_due_runs([_report()], NOW, {"daily": {"2026-11-27": _failed(2, 61)}}, RULE)
    assert "daily:2026-11-27:retry2" in [r.run_key for r in second.runs]


def test_after_max_retries_the_period_is_given_up():
    plan = plan_due_runs([_report()], NOW, {"daily": {"2026-11-27": _failed(4, 600)}}, RULE)
    assert all(r.period != "2026-11-27" for r in plan.runs)
    assert plan.gave_up == [("daily", "2026-11-27")]
    assert "gave up" in plan.explain()
    assert retry_decision(_failed(4, 600), NOW, RULE).action == "gave_up"
    assert retry_decision(_failed(3, 600), NOW, RULE).action == "retry"
    assert retry_decision(_failed(1, 0), NOW, RetryRule(timedelta(0), 0)).action == "gave_up"


def test_disabled_report_and_periods_outside_the_look_back_are_not_retried():
    history = {"daily": {"2026-11-20": _failed(1, 3000)}}
    assert all(r.period != "2026-11-20" for r in plan_due_runs([_report()], NOW, history, RULE).runs)
    assert plan_due_runs([_report(enabled=False)], NOW, {"daily": {"2026-11-27": _failed(1, 61)}}, RULE).runs == []
    assert in_schedule_horizon(_report(), "2026-11-27", NOW)
    assert not in_schedule_horizon(_report(), "2026-11-20", NOW)
    assert not in_schedule_horizon(_report(enabled=False), "2026-11-27", NOW)


def test_run_keys():
    assert run_key("r", "2026-11-27") == "r:2026-11-27"
    assert run_key("r", "2026-11-27", 2) == "r:2026-11-27:retry2"


def test_retry_settings_from_the_environment():
    rule = RetryRule.from_settings(load_settings({"COMPLIANCE_RETRY_COOLDOWN_MIN": "15", "COMPLIANCE_RETRY_MAX": "0"}))
    assert rule == RetryRule(timedelta(minutes=15), 0)
    assert RetryRule.from_settings(load_settings({})) == RetryRule(timedelta(hours=1), 3)
    with pytest.raises(ValueError, match="COMPLIANCE_RETRY_MAX must be a whole number of retries"):
        load_settings({"COMPLIANCE_RETRY_MAX": "three"})
    with pytest.raises(ValueError, match="COMPLIANCE_RETRY_COOLDOWN_MIN must be at least 0"):
        load_settings({"COMPLIANCE_RETRY_COOLDOWN_MIN": "-5"})
    assert load_settings({"COMPLIANCE_ALERT_FALLBACK": " pager "}).alert_fallback == "pager"
    assert load_settings({}).alert_fallback is None
