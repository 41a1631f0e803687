"""Reading report runs from Dagster's run storage: what ran, what is in flight, history."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
)

from compliance_reports.scheduling import PeriodRuns

PERIOD_TAG = "dagster/partition/period"
REPORT_TAG = "dagster/partition/report"
# Set on a report run the asset refused before doing anything (a period not yet ended, launched
# from the UI or a backfill): such a failure does not mean the period was attempted.
REFUSED_TAG = "compliance_reports/refused"
# Set by Dagster on a failed run when run retries will re-execute it, and the id of the
# re-execution once launched (dagster._core.storage.tags).
WILL_RETRY_TAG = "dagster/will_retry"
AUTO_RETRY_RUN_ID_TAG = "dagster/auto_retry_run_id"

IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
# Runs that tell the schedule something besides a materialization: in flight (coalesce),
# failed (retry after the cool-down) or cancelled (leave alone).
NOT_SUCCEEDED = IN_FLIGHT + [DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
CANCELLABLE = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED]


def report_asset_key(frequency: str) -> AssetKey:
    return AssetKey(f"{frequency}_compliance_report")


def _finished_at(record) -> datetime:
    end = record.end_time
    if end:
        return datetime.fromtimestamp(end, timezone.utc)
    return record.update_timestamp.astimezone(timezone.utc)


def fold_runs(records, materialized: bool = False) -> PeriodRuns:
    """One period's PeriodRuns from its unfinished, failed and cancelled run records."""
    in_flight, failures, last_failure, last_finished = False, 0, None, None
    for record in records:
        run = record.dagster_run
        if run.status in IN_FLIGHT:
            in_flight = True
            continue
        if run.status == DagsterRunStatus.FAILURE and run.tags.get(WILL_RETRY_TAG) == "true":
            # Dagster re-executes this crashed run: its re-execution stands for it.
            in_flight = in_flight or AUTO_RETRY_RUN_ID_TAG not in run.tags
            continue
        finished = _finished_at(record)
        if run.status == DagsterRunStatus.FAILURE:
            failures += 1
            last_failure = max(last_failure or finished, finished)
        if last_finished is None or finished >= last_finished[0]:
            last_finished = (finished, run.status)
    cancelled = last_finished is not None and last_finished[1] == DagsterRunStatus.CANCELED
    return PeriodRuns(materialized=materialized, in_flight=in_flight, failures=failures,
                      last_failure_at=last_failure, cancelled=cancelled)


def period_history(
    instance: DagsterInstance, frequency: str, since: datetime
) -> dict[str, dict[str, PeriodRuns]]:
    """report id -> period -> PeriodRuns, for every period with a materialization or a run
    that did not succeed (created after `since`).

    A run the asset refused (REFUSED_TAG: the period had not ended) does not count: the period
    is requested once its slot passes.

    Two storage queries for the whole frequency, whatever the number of reports. Runs are
    matched on Dagster's own partition tags, which backfill runs carry too.
    """
    materialized: set[tuple[str, str]] = set()
    for key in instance.get_materialized_partitions(report_asset_key(frequency)):
        period, _, report_id = key.partition("|")
        materialized.add((report_id, period))
    # Unfinished and failed runs are few, so all of them in the lookback are read and matched
    # here rather than filtering on thousands of report ids in SQL.
    grouped: dict[tuple[str, str], list] = defaultdict(list)
    for record in instance.get_run_records(RunsFilter(statuses=NOT_SUCCEEDED, created_after=since)):
        tags = record.dagster_run.tags
        if _refused(record):
            continue
        if REPORT_TAG in tags and PERIOD_TAG in tags:
            grouped[(tags[REPORT_TAG], tags[PERIOD_TAG])].append(record)
    history: dict[str, dict[str, PeriodRuns]] = defaultdict(dict)
    for report_id, period in materialized | set(grouped):
        history[report_id][period] = fold_runs(grouped.get((report_id, period), []),
                                               (report_id, period) in materialized)
    return history


def runs_of_period(instance: DagsterInstance, frequency: str, report_id: str, period: str) -> PeriodRuns:
    """PeriodRuns of one (report, period), whatever the age of its runs."""
    records = instance.get_run_records(
        RunsFilter(tags={REPORT_TAG: report_id, PERIOD_TAG: period}, statuses=NOT_SUCCEEDED)
    )
    records = [r for r in records if not _refused(r)]
    materialized = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=report_asset_key(frequency), asset_partitions=[f"{period}|{report_id}"]),
        limit=1,
    ).records
    return fold_runs(records, materialized=bool(materialized))


def _refused(record) -> bool:
    return REFUSED_TAG in record.dagster_run.tags and record.dagster_run.status == DagsterRunStatus.FAILURE


def in_flight_run(instance: DagsterInstance, report_id: str, period: str) -> str | None:
    """The id of a queued or running report run of (report, period), if there is one."""
    records = instance.get_run_records(
        RunsFilter(tags={REPORT_TAG: report_id, PERIOD_TAG: period}, statuses=IN_FLIGHT), limit=1
    )
    return records[0].dagster_run.run_id if records else None


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
    """What a run did, in words: "daily report", "publish", not `daily_reports_job`."""
    if job_name == PUBLISH_JOB:
        return "publish"
    # Report runs carry the report partition; runs recorded before the named jobs existed
    # were `__ASSET_JOB` runs.
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


# The tag a publish run carries naming the report run (materialization) it publishes.
REPORT_RUN_TAG = "report_run_id"
# Report materialization metadata of a batched backfill run that exported and delivered the
# period itself: the publish sensor leaves it alone.
PUBLISHED_IN_RUN = "published_in_run"


def _fold_publish_runs(records) -> PeriodRuns:
    """A report run's publish runs as PeriodRuns: `materialized` means one of them succeeded."""
    published = any(r.dagster_run.status == DagsterRunStatus.SUCCESS for r in records)
    return fold_runs([r for r in records if r.dagster_run.status != DagsterRunStatus.SUCCESS],
                     materialized=published)


def publish_runs_of(instance: DagsterInstance, job_name: str, report_run_id: str) -> PeriodRuns:
    """PeriodRuns of the publish runs of one report run."""
    return _fold_publish_runs(instance.get_run_records(
        RunsFilter(job_name=job_name, tags={REPORT_RUN_TAG: report_run_id})
    ))


def failed_publishes(instance: DagsterInstance, job_name: str, since: datetime) -> dict[str, tuple[PeriodRuns, Any]]:
    """report run id -> (PeriodRuns of its publish runs, its latest failed publish run), for the
    report runs whose publish failed after `since`. Two run-storage queries."""
    failed = instance.get_run_records(RunsFilter(
        job_name=job_name, statuses=[DagsterRunStatus.FAILURE], updated_after=since,
    ))
    ids = sorted({r.dagster_run.tags[REPORT_RUN_TAG] for r in failed if REPORT_RUN_TAG in r.dagster_run.tags})
    if not ids:
        return {}
    grouped: dict[str, list] = defaultdict(list)
    for record in instance.get_run_records(RunsFilter(job_name=job_name, tags={REPORT_RUN_TAG: ids})):
        grouped[record.dagster_run.tags[REPORT_RUN_TAG]].append(record)
    result = {}
    for report_run_id, records in grouped.items():
        failures = [r for r in records if r.dagster_run.status == DagsterRunStatus.FAILURE]
        if failures:
            result[report_run_id] = (_fold_publish_runs(records), max(failures, key=_finished_at).dagster_run)
    return result
