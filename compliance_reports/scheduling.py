"""Which (report, period) runs are due at an instant: the schedule tick's decision, without Dagster.

Run identity is `<report_id>:<period>` (the run key), so editing a report's schedule never
produces a second run for a period that already ran.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from compliance_reports.config.models import ReportConfig
from compliance_reports.periods import due_periods, last_slot_at_or_before, period_for_slot

TRIGGERS = ("schedule", "manual", "backfill", "catch_up", "retry", "request")


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
