"""Which (report, period) runs are due at an instant, and which requested periods may run.

The schedule tick's decision and the one check every requested period passes (CLI `run`,
`reports run-now`, `schedule_requests` rows, backfills reaching the report asset), without
Dagster.

Run identity is `<report_id>:<period>` (the run key), so editing a report's schedule never
produces a second run for a period that already ran.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from compliance_reports.config.models import ReportConfig
from compliance_reports.periods import (
    Window,
    due_periods,
    last_slot_at_or_before,
    latest_ended_period,
    period_for_slot,
    period_has_ended,
    period_window,
    validate_period_key,
)

TRIGGERS = ("schedule", "manual", "backfill", "catch_up", "retry", "request")

# The first period each report asset offers; orchestration/report_partitions.py starts the
# Dagster partitions here. Periods x reports should stay under ~100,000 per asset, so the daily
# asset starts later than the others; move a start back to backfill older data.
FIRST_PERIODS = {
    "daily": "2025-01-01",
    "weekly": "2024-01-01",  # a Monday
    "monthly": "2020-01-01",
    "quarterly": "2020-01-01",
}


class PeriodRefused(ValueError):
    """A requested period that cannot run; the message is one line saying why."""


def check_requested_period(period: str, frequency: str, timezone: str, now: datetime) -> Window:
    """The period's window if it may run now, else PeriodRefused.

    Refused: a key that is not the first day of a period of `frequency` (a weekly key that is
    not a Monday, a monthly one not on the 1st, ...), a period before the asset's first period,
    and a period that has not ended in `timezone` at `now` (a run would fail, and a failed
    period is not requested again by the schedule).
    """
    try:
        validate_period_key(period, frequency)
    except ValueError as exc:
        raise PeriodRefused(str(exc)) from None
    first = FIRST_PERIODS[frequency]
    if period < first:
        raise PeriodRefused(
            f"{frequency} period {period} is before {first}, the first period of "
            f"{frequency}_compliance_report"
        )
    window = period_window(period, frequency, timezone)
    if not period_has_ended(period, frequency, timezone, now):
        raise PeriodRefused(
            f"{frequency} period {period} has not ended in {timezone}: it ends at "
            f"{window.end_local.isoformat()} ({window.end_utc.isoformat()}); request it after that"
        )
    return window


def requested_period(report: ReportConfig, period: str | None, now: datetime) -> str:
    """The period a request runs (default: the latest ended), checked by check_requested_period."""
    zone = report.schedule.timezone
    if period is None:
        period = latest_ended_period(now, report.frequency, zone)
    check_requested_period(period, report.frequency, zone, now)
    return period


@dataclass(frozen=True)
class DueRun:
    report_id: str
    organization_id: str
    frequency: str
    period: str
    trigger: str  # schedule for the latest slot's period, catch_up for older missed ones

    @property
    def run_key(self) -> str:
        return run_key(self.report_id, self.period)

    @property
    def tags(self) -> dict[str, str]:
        return run_tags(self.report_id, self.organization_id, self.frequency, self.period, self.trigger)


def run_key(report_id: str, period: str) -> str:
    return f"{report_id}:{period}"


def run_tags(report_id: str, organization_id: str, frequency: str, period: str, trigger: str) -> dict[str, str]:
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {TRIGGERS}, not {trigger!r}")
    return {
        "report_id": report_id,
        "organization_id": organization_id,
        "frequency": frequency,
        "period": period,
        "trigger": trigger,
    }


def plan_due_runs(
    reports: Iterable[ReportConfig],
    now: datetime,
    done: Mapping[str, set[str]],
) -> list[DueRun]:
    """Every enabled report's due periods at `now`, minus those in `done[report_id]`.

    `done` holds periods with a materialization or with a run that is in flight, failed or
    cancelled: failures are handled by retries, alerts and manual re-runs, not by the schedule.
    """
    planned: list[DueRun] = []
    for report in reports:
        if not report.enabled:
            continue
        spec = report.schedule.to_spec()
        periods = due_periods(spec, now, done.get(report.id, set()))
        if not periods:
            continue
        latest_slot = last_slot_at_or_before(spec, now)
        current = period_for_slot(spec, latest_slot) if latest_slot else None
        for period in periods:
            planned.append(
                DueRun(
                    report_id=report.id,
                    organization_id=report.organization_id,
                    frequency=report.frequency,
                    period=period,
                    trigger="schedule" if period == current else "catch_up",
                )
            )
    return planned
