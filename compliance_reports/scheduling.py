"""Which (report, period) runs are due at an instant, and which requested periods may run.

The schedule tick's decision and the one check every requested period passes (CLI `run`,
`reports run-now`, `schedule_requests` rows, backfills reaching the report asset), without
Dagster.

Run identity is `<report_id>:<period>` (the run key), so editing a report's schedule never
produces a second run for a period that already ran. A period whose run failed is requested
again after a cool-down, at most `max_retries` times, under the run key
`<report_id>:<period>:retry<N>` (Dagster keeps a run key for ever, so each retry needs its
own); then it is left failed ("gave up") and the failure alert says so. A period with a queued
or running run is never requested again while that run is in flight (coalesced).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from compliance_reports.config.models import ReportConfig
from compliance_reports.settings import first_periods
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
    first = first_periods()[frequency]
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
    trigger: str  # schedule for the latest slot's period, catch_up for older missed ones, retry
    retry: int = 0  # the retry number (1 = first re-request after a failure)

    @property
    def run_key(self) -> str:
        return run_key(self.report_id, self.period, self.retry)

    @property
    def tags(self) -> dict[str, str]:
        return report_run_tags(self.organization_id, self.trigger)


def run_key(report_id: str, period: str, retry: int = 0) -> str:
    return f"{report_id}:{period}:retry{retry}" if retry else f"{report_id}:{period}"


@dataclass(frozen=True)
class PeriodRuns:
    """What Dagster's run storage says about one (report, period).

    `failures` counts failed report runs that Dagster will not re-execute itself (a crashed
    run that run retries re-launch counts through its re-execution, not twice).
    `cancelled` means the latest finished run was cancelled (e.g. by an unschedule): such a
    period is never requested again by the schedule.
    """

    materialized: bool = False
    in_flight: bool = False
    failures: int = 0
    last_failure_at: datetime | None = None
    cancelled: bool = False

    @property
    def untouched(self) -> bool:
        return not (self.materialized or self.in_flight or self.failures or self.cancelled)


@dataclass(frozen=True)
class RetryRule:
    """COMPLIANCE_RETRY_COOLDOWN_MIN and COMPLIANCE_RETRY_MAX (see settings)."""

    cooldown: timedelta = timedelta(hours=1)
    max_retries: int = 3

    @classmethod
    def from_settings(cls, settings) -> "RetryRule":
        return cls(timedelta(minutes=settings.retry_cooldown_min), settings.retry_max)


@dataclass(frozen=True)
class RetryDecision:
    action: str  # none | wait | retry | gave_up
    retry: int = 0  # the retry number to request (retry) or that would come next (wait)
    at: datetime | None = None  # when the retry becomes due (wait, retry)


def retry_decision(runs: PeriodRuns | None, now: datetime, rule: RetryRule) -> RetryDecision:
    """What the schedule does about a period that has a failed run and nothing better."""
    if runs is None or runs.materialized or runs.in_flight or runs.cancelled or not runs.failures:
        return RetryDecision("none")
    if runs.failures > rule.max_retries:
        return RetryDecision("gave_up", runs.failures - 1)
    due = (runs.last_failure_at or now) + rule.cooldown
    if now >= due:
        return RetryDecision("retry", runs.failures, due)
    return RetryDecision("wait", runs.failures, due)


@dataclass
class Plan:
    """The tick's decision: runs to request, and failed periods left alone (with why)."""

    runs: list[DueRun] = field(default_factory=list)
    waiting: list[tuple[str, str, datetime]] = field(default_factory=list)  # report, period, retry at
    gave_up: list[tuple[str, str]] = field(default_factory=list)

    def explain(self) -> str:
        parts = []
        if self.waiting:
            first = min(at for _, _, at in self.waiting)
            parts.append(f"{len(self.waiting)} failed period(s) wait for their retry "
                         f"(next at {first.isoformat(timespec='minutes')})")
        if self.gave_up:
            parts.append(f"{len(self.gave_up)} failed period(s) gave up after their retries: "
                         + ", ".join(f"{r} {p}" for r, p in self.gave_up[:5]))
        return "; ".join(parts)


def _check_trigger(trigger: str) -> None:
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {TRIGGERS}, not {trigger!r}")


def report_run_tags(organization_id: str, trigger: str) -> dict[str, str]:
    """A report run's own tags. Its report and period are its partition (Dagster's
    dagster/partition/report and dagster/partition/period tags) and its frequency the tag of
    its named job, so the run shows those once, not twice."""
    _check_trigger(trigger)
    return {"organization_id": organization_id, "trigger": trigger}


def run_tags(report_id: str, organization_id: str, frequency: str, period: str, trigger: str) -> dict[str, str]:
    """A publish run's tags: it has no partition, so it names its report and period itself."""
    _check_trigger(trigger)
    return {
        "report_id": report_id,
        "organization_id": organization_id,
        "frequency": frequency,
        "period": period,
        "trigger": trigger,
    }


# Which due runs a capped tick requests first: the latest slot's period and retries, then
# catch-up; within each, the newest period first.
_TRIGGER_ORDER = {"schedule": 0, "retry": 1, "catch_up": 2}


def first_batch(runs: list[DueRun], cap: int) -> list[DueRun]:
    """The `cap` runs a tick requests when more are due; the others stay due for the next ticks."""
    if len(runs) <= cap:
        return list(runs)
    ordered = sorted(runs, key=lambda r: (_TRIGGER_ORDER.get(r.trigger, 3), _desc(r.period), r.report_id))
    return ordered[:cap]


def _desc(period: str) -> tuple[int, ...]:
    return tuple(-int(part) for part in period.split("-"))


def plan_due_runs(
    reports: Iterable[ReportConfig],
    now: datetime,
    history: Mapping[str, Mapping[str, PeriodRuns]],
    rule: RetryRule | None = None,
) -> Plan:
    """Every enabled report's due periods at `now`, given what already ran (`history`).

    A period in the look-back (the last `max_catch_up` slots) with no run at all is requested
    (trigger `schedule` for the latest slot's period, `catch_up` for older ones); one whose run
    failed is requested again with trigger `retry` once `rule.cooldown` has passed since the
    failure, up to `rule.max_retries` times; materialized, in-flight and cancelled periods are
    left alone.
    """
    rule = rule or RetryRule()
    plan = Plan()
    for report in reports:
        if not report.enabled:
            continue
        spec = report.schedule.to_spec()
        known = history.get(report.id, {})
        horizon = due_periods(spec, now, frozenset())
        if not horizon:
            continue
        latest_slot = last_slot_at_or_before(spec, now)
        current = period_for_slot(spec, latest_slot) if latest_slot else None
        for period in horizon:
            runs = known.get(period)
            due = DueRun(report.id, report.organization_id, report.frequency, period,
                         "schedule" if period == current else "catch_up")
            if runs is None or runs.untouched:
                plan.runs.append(due)
                continue
            decision = retry_decision(runs, now, rule)
            if decision.action == "retry":
                plan.runs.append(DueRun(report.id, report.organization_id, report.frequency, period,
                                        "retry", decision.retry))
            elif decision.action == "wait":
                plan.waiting.append((report.id, period, decision.at))
            elif decision.action == "gave_up":
                plan.gave_up.append((report.id, period))
    return plan


def in_schedule_horizon(report: ReportConfig, period: str, at: datetime) -> bool:
    """Whether the report's schedule looks at `period` at instant `at` (and so can retry it).

    True for an enabled report whose period is covered by one of its last `max_catch_up` slots
    at `at`; older periods are left to backfills.
    """
    if not report.enabled:
        return False
    return period in due_periods(report.schedule.to_spec(), at, frozenset())
