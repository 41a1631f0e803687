"""Reading report runs from Dagster's run storage: what ran, what is in flight, history."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

PERIOD_TAG = "dagster/partition/period"
REPORT_TAG = "dagster/partition/report"
# Set on a report run the asset refused before doing anything (a period not yet ended, launched
# from the UI or a backfill): such a failure does not mean the period was attempted.
REFUSED_TAG = "compliance_reports/refused"

IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
# Periods the schedule must not request again: running, or ended without success. Failures are
# for run retries, the failure alert and a manual re-run.
NOT_AGAIN = IN_FLIGHT + [DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
CANCELLABLE = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED]


def report_asset_key(frequency: str) -> AssetKey:
    return AssetKey(f"{frequency}_compliance_report")


def done_periods(
    instance: DagsterInstance, frequency: str, since: datetime
) -> dict[str, set[str]]:
    """report id -> periods that are materialized, in flight, failed or cancelled.

    A run the asset refused (REFUSED_TAG: the period had not ended) does not count: the period
    is requested once its slot passes.

    Two storage queries for the whole frequency, whatever the number of reports. Runs are
    matched on Dagster's own partition tags, which backfill runs carry too.
    """
    done: dict[str, set[str]] = defaultdict(set)
    for key in instance.get_materialized_partitions(report_asset_key(frequency)):
        period, _, report_id = key.partition("|")
        done[report_id].add(period)
    # Unfinished and failed runs are few, so all of them in the lookback are read and matched
    # here rather than filtering on thousands of report ids in SQL.
    records = instance.get_run_records(RunsFilter(statuses=NOT_AGAIN, created_after=since))
    for record in records:
        tags = record.dagster_run.tags
        if REFUSED_TAG in tags and record.dagster_run.status == DagsterRunStatus.FAILURE:
            continue
        if REPORT_TAG in tags and PERIOD_TAG in tags:
            done[tags[REPORT_TAG]].add(tags[PERIOD_TAG])
    return done


def cancel_pending_runs(instance: DagsterInstance, report_id: str) -> list[str]:
    """Cancel the report's queued and not-yet-started runs; returns their ids."""
    cancelled = []
    records = instance.get_run_records(
        RunsFilter(tags={REPORT_TAG: report_id}, statuses=CANCELLABLE)
    )
    for record in records:
        run = record.dagster_run
        if run.status == DagsterRunStatus.QUEUED:
            instance.run_coordinator.cancel_run(run.run_id)
        else:
            instance.report_run_canceled(run, message="Report unscheduled before the run started.")
        cancelled.append(run.run_id)
    return cancelled


def cancel_scheduled_runs_of(instance: DagsterInstance, report_ids: set[str]) -> list[str]:
    """Cancel queued schedule and catch-up runs of the given (disabled) reports.

    Closes the race where a schedule tick that read a report as enabled submits a run just
    after an unschedule request was applied. Backfills and manual runs are left alone: an
    operator may backfill a disabled report on purpose.
    """
    if not report_ids:
        return []
    cancelled = []
    for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.QUEUED])):
        run = record.dagster_run
        if run.tags.get(REPORT_TAG) in report_ids and run.tags.get("trigger") in ("schedule", "catch_up"):
            instance.run_coordinator.cancel_run(run.run_id)
            cancelled.append(run.run_id)
    return cancelled


PUBLISH_JOB = "publish_report_job"


def job_label(job_name: str, tags) -> str:
    """What a run did, in words: "daily report", "publish", not `__ASSET_JOB`."""
    if job_name == PUBLISH_JOB:
        return "publish"
    # Report runs carry the report partition, whatever Dagster named their job (`__ASSET_JOB`
    # from the UI and schedules, `__ephemeral_asset_job__` from `run`).
    if REPORT_TAG in tags or job_name.startswith("__ASSET_JOB") or job_name.endswith("_reports_job"):
        return f"{tags.get('frequency', '')} report".strip()
    return job_name


def run_error(instance: DagsterInstance, run_id: str) -> str | None:
    """The first failure message of a run (the step error, else the run failure), one line."""
    types = {DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE}
    for record in instance.all_logs(run_id, of_type=types):
        event = record.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event else None
        message = (error.message if error is not None and error.message else None) or record.message
        if message:
            return " ".join(message.split())
    return None


def report_history(instance: DagsterInstance, report_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """Runs of one report (report runs and publish runs), newest first; failed ones with their error."""
    seen: dict[str, Any] = {}
    for tags in ({REPORT_TAG: report_id}, {"report_id": report_id}):
        for record in instance.get_run_records(RunsFilter(tags=tags), limit=limit):
            seen[record.dagster_run.run_id] = record
    rows = []
    for record in sorted(seen.values(), key=lambda r: r.create_timestamp, reverse=True)[:limit]:
        run = record.dagster_run
        start, end = record.start_time, record.end_time
        rows.append(
            {
                "run_id": run.run_id,
                "job": job_label(run.job_name, run.tags),
                "dagster_job": run.job_name,
                "status": run.status.value,
                "period": run.tags.get(PERIOD_TAG) or run.tags.get("period"),
                "trigger": run.tags.get("trigger")
                or ("backfill" if "dagster/backfill" in run.tags else "manual"),
                "created": record.create_timestamp,
                "start": datetime.fromtimestamp(start).astimezone() if start else None,
                "end": datetime.fromtimestamp(end).astimezone() if end else None,
                "duration_s": round(end - start, 3) if start and end else None,
                "error": run_error(instance, run.run_id) if run.status == DagsterRunStatus.FAILURE else None,
            }
        )
    return rows


def lookback(frequency: str, max_catch_up: int) -> timedelta:
    """How far back in-flight and failed runs matter for a schedule tick."""
    days = {"daily": 1, "weekly": 7, "monthly": 31, "quarterly": 92}[frequency]
    return timedelta(days=days * (max_catch_up + 2))
