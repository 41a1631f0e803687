"""The one check every requested period passes (CLI run / run-now, schedule_requests, backfills)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from compliance_reports.config.models import ReportConfig
from compliance_reports.scheduling import (
    PeriodRefused,
    check_requested_period,
    requested_period,
)
from compliance_reports.settings import DEFAULT_FIRST_PERIODS as FIRST_PERIODS

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("period", "frequency", "zone", "reason"),
    [
        ("2026-11-24", "weekly", "UTC", "is a Tuesday; weekly periods start on Monday"),
        ("2026-11-02", "monthly", "UTC", "is not the first day of a month"),
        ("2026-11-01", "quarterly", "UTC", "is not the first day of a calendar quarter"),
        ("2026-11-31", "daily", "UTC", "is not a valid date"),
        ("26-11-01", "monthly", "UTC", "must be 'YYYY-MM-DD'"),
        ("2024-12-31", "daily", "UTC", "daily period 2024-12-31 is before 2025-01-01, the first period of daily_compliance_report"),
        ("2023-12-25", "weekly", "UTC", "is before 2024-01-01"),
        ("2019-10-01", "quarterly", "UTC", "is before 2020-01-01"),
        # 2026-11-28 in Berlin ends at 2026-11-28T23:00Z, after NOW.
        ("2026-11-28", "daily", "Europe/Berlin", "daily period 2026-11-28 has not ended in Europe/Berlin: it ends at 2026-11-29T00:00:00+01:00 (2026-11-28T23:00:00+00:00)"),
        ("2026-11-23", "weekly", "UTC", "has not ended in UTC"),
        ("2026-11-01", "monthly", "Pacific/Kiritimati", "has not ended in Pacific/Kiritimati"),
    ],
)
def test_refusals_say_why_in_one_line(period, frequency, zone, reason):
    with pytest.raises(PeriodRefused) as refused:
        check_requested_period(period, frequency, zone, NOW)
    assert reason in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("period", "frequency", "zone"),
    [
        ("2026-11-27", "daily", "Europe/Berlin"),
        # Already over in UTC+14 at 10:00 UTC: 2026-11-28 ended there at 2026-11-28T10:00Z.
        ("2026-11-28", "daily", "Pacific/Kiritimati"),
        ("2026-11-16", "weekly", "America/New_York"),
        ("2026-10-01", "monthly", "UTC"),
        ("2026-07-01", "quarterly", "UTC"),
    ]
    + [(first, frequency, "UTC") for frequency, first in FIRST_PERIODS.items()],
)
def test_ended_periods_from_the_first_on_are_accepted(period, frequency, zone):
    window = check_requested_period(period, frequency, zone, NOW)
    assert window.period_key == period and window.end_utc <= NOW


def test_the_end_instant_itself_counts_as_ended():
    end = datetime(2026, 11, 28, 23, 0, tzinfo=timezone.utc)
    check_requested_period("2026-11-28", "daily", "Europe/Berlin", end)
    with pytest.raises(PeriodRefused):
        check_requested_period("2026-11-28", "daily", "Europe/Berlin", end - timedelta(microseconds=1))


def test_requested_period_defaults_to_the_latest_ended():
    report = ReportConfig.model_validate(
        {
            "id": "r", "name": "r", "organization_id": "o", "report_type": "general_compliance",
            "schedule": {"frequency": "monthly", "timezone": "Europe/Berlin"}, "formats": ["json"],
        }
    )
    assert requested_period(report, None, NOW) == "2026-10-01"
    assert requested_period(report, "2026-09-01", NOW) == "2026-09-01"
    with pytest.raises(PeriodRefused, match="has not ended"):
        requested_period(report, "2026-11-01", NOW)


def test_first_batch_takes_latest_slots_and_retries_before_catch_up_newest_first():
    from compliance_reports.scheduling import DueRun, first_batch

    def run(report_id, period, trigger):
        return DueRun(report_id, "org-1", "daily", period, trigger)

    due = [run("a", "2026-11-25", "catch_up"), run("a", "2026-11-27", "schedule"), run("b", "2026-11-26", "catch_up"),
           run("c", "2026-11-20", "retry"), run("b", "2026-11-27", "schedule")]
    assert first_batch(due, 10) == due  # under the cap: all, as planned
    assert [(r.report_id, r.period) for r in first_batch(due, 4)] == [
        ("a", "2026-11-27"), ("b", "2026-11-27"), ("c", "2026-11-20"), ("b", "2026-11-26")]
