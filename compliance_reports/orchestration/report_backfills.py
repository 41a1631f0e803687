"""Backfills of one report over a range of periods, through the named report job.

A job backfill (as the UI's "Launch backfill" on daily_reports_job or `dagster job backfill`
makes): recorded in the instance with status REQUESTED, so it is listed under Backfills in the
UI at once and the daemon's backfill loop launches one `<frequency>_reports_job` run per
period, within the instance's concurrency limits. The daemon finds the job by the code
location's name, which the workspaces set to `compliance_reports`.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timezone
from typing import Any

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import (
    InProcessCodeLocationOrigin,
    RemotePartitionSetOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.utils import make_new_backfill_id

from compliance_reports.config.models import ReportConfig
from compliance_reports.orchestration.report_jobs import report_jobs
from compliance_reports.orchestration.report_partitions import (
    partition_key_string,
    period_partitions,
    report_id_partitions,
)
from compliance_reports.periods import next_period_start
from compliance_reports.scheduling import PeriodRefused, check_requested_period

LOCATION_NAME = "compliance_reports"
REPOSITORY_NAME = "__repository__"  # the repository of a Definitions-based code location
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
BACKFILL_DONE = {BulkActionStatus.COMPLETED, BulkActionStatus.COMPLETED_SUCCESS,
                 BulkActionStatus.COMPLETED_FAILED, BulkActionStatus.FAILED,
                 BulkActionStatus.CANCELED}


def backfill_periods(report: ReportConfig, first: str, last: str, now: datetime) -> list[str]:
    """Every period key of the report from `first` to `last`, each one allowed to run now.

    Raises PeriodRefused (the message names --from or --to) for a key that is not a period
    start, one before the asset's first period, one not yet ended, or a reversed range.
    """
    for option, key in (("--from", first), ("--to", last)):
        try:
            check_requested_period(key, report.frequency, report.schedule.timezone, now)
        except PeriodRefused as exc:
            raise PeriodRefused(f"{option}: {exc}") from None
    if last < first:
        raise PeriodRefused(f"--to {last} is before --from {first}")
    keys, start = [], date.fromisoformat(first)
    while start.isoformat() <= last:
        keys.append(start.isoformat())
        start = next_period_start(start, report.frequency)
    missing = [k for k in keys if not period_partitions[report.frequency].has_partition_key(k)]
    if missing:  # a first-period setting changed since the code location loaded
        raise PeriodRefused(f"--from: {missing[0]} is not a partition of {report.frequency}_compliance_report")
    return keys


def launch_report_backfill(
    instance: DagsterInstance,
    report: ReportConfig,
    periods: list[str],
    location_name: str = LOCATION_NAME,
) -> str:
    """Record a REQUESTED job backfill of `periods` for the report; returns its id."""
    partitions = report_id_partitions[report.frequency]
    if not instance.has_dynamic_partition(partitions.name, report.id):
        instance.add_dynamic_partitions(partitions.name, [report.id])
    job_name = report_jobs[report.frequency].name
    origin = RemotePartitionSetOrigin(
        repository_origin=RemoteRepositoryOrigin(
            code_location_origin=InProcessCodeLocationOrigin(
                loadable_target_origin=LoadableTargetOrigin(module_name="compliance_reports.definitions"),
                location_name=location_name,
            ),
            repository_name=REPOSITORY_NAME,
        ),
        partition_set_name=f"{job_name}_partition_set",
    )
    backfill_id = make_new_backfill_id()
    instance.add_backfill(
        PartitionBackfill(
            backfill_id=backfill_id,
            status=BulkActionStatus.REQUESTED,
            from_failure=False,
            tags={"trigger": "backfill"},
            backfill_timestamp=datetime.now(timezone.utc).timestamp(),
            partition_set_origin=origin,
            partition_names=[partition_key_string(p, report.id) for p in periods],
            reexecution_steps=None,
            title=f"{report.id} {periods[0]} to {periods[-1]}",
            description=f"compliance-reports backfill of {report.id} ({len(periods)} periods)",
        )
    )
    return backfill_id


def backfill_progress(instance: DagsterInstance, backfill_id: str) -> dict[str, Any]:
    """The backfill's status and its runs by status; `done` once it and all its runs finished."""
    backfill = instance.get_backfill(backfill_id)
    if backfill is None:
        raise LookupError(f"no backfill {backfill_id} in this instance")
    runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
    by_status = Counter(run.status.value for run in runs)
    finished = sum(run.status in FINISHED for run in runs)
    total = len(backfill.partition_names or [])
    return {
        "backfill_id": backfill_id,
        "status": backfill.status.value,
        "partitions": total,
        "runs": dict(sorted(by_status.items())),
        "finished": finished,
        "failed": by_status.get(DagsterRunStatus.FAILURE.value, 0),
        "done": backfill.status in BACKFILL_DONE and finished == len(runs),
        "error": backfill.error.message.strip() if backfill.error else None,
    }
