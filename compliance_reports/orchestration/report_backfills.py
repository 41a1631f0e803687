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

from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
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
from compliance_reports.scheduling import PeriodRefused, check_requested_period, run_tags

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


# Runs of one batched backfill carry its id; each run also says how many periods it holds.
BATCH_TAG = "compliance_reports/backfill"
BATCH_PERIODS_TAG = "compliance_reports/backfill_periods"
MAX_BATCH_SIZE = 50


def default_batch_size(period_count: int) -> int:
    """Two runs at a time get the run queue's per-frequency concurrency (2) working; 50 periods
    at most per run keep one run's log readable and a failed run's re-run short."""
    return max(1, min(MAX_BATCH_SIZE, -(-period_count // 2)))


def batches(periods: list[str], size: int) -> list[list[str]]:
    if size < 1:
        raise ValueError(f"batch size must be at least 1, not {size}")
    return [periods[i:i + size] for i in range(0, len(periods), size)]


def launch_batched_backfill(
    instance: DagsterInstance,
    report: ReportConfig,
    periods: list[str],
    batch_size: int,
    location_name: str = LOCATION_NAME,
) -> tuple[str, list[str]]:
    """Queue one report_backfill_job run per batch of consecutive periods; returns the backfill
    id (tag compliance_reports/backfill of every run) and the run ids.

    The runs wait in the run queue like any other, so the daemon launches them within the
    instance's concurrency limits (the `frequency` tag's limit applies to them).
    """
    from dagster._core.run_coordinator import QueuedRunCoordinator

    from compliance_reports.orchestration.report_backfill_job import report_backfill_job

    if not isinstance(instance.run_coordinator, QueuedRunCoordinator):
        raise ValueError("batched backfills need the instance's QueuedRunCoordinator (the daemon's run queue); "
                         "use --per-period with this instance")
    partitions = report_id_partitions[report.frequency]
    if not instance.has_dynamic_partition(partitions.name, report.id):
        instance.add_dynamic_partitions(partitions.name, [report.id])
    backfill_id = make_new_backfill_id()
    run_ids = []
    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(module_name="compliance_reports.definitions"),
        location_name=location_name,
    )
    with origin.create_location(instance) as location:
        repository = location.get_repository(REPOSITORY_NAME)
        remote_job = repository.get_full_job(report_backfill_job.name)
        for chunk in batches(periods, batch_size):
            run_config = {"ops": {"build_and_publish_periods": {"config": {
                "report_id": report.id, "frequency": report.frequency, "periods": chunk,
            }}}}
            tags = {
                **remote_job.tags,
                **run_tags(report.id, report.organization_id, report.frequency, f"{chunk[0]}..{chunk[-1]}",
                           "backfill"),
                BATCH_TAG: backfill_id,
                BATCH_PERIODS_TAG: str(len(chunk)),
            }
            plan = location.get_execution_plan(remote_job, run_config, step_keys_to_execute=None,
                                               known_state=None, instance=instance).execution_plan_snapshot
            run = instance.create_run(
                job_name=remote_job.name, run_id=None, run_config=run_config,
                resolved_op_selection=None, step_keys_to_execute=plan.step_keys_to_execute,
                op_selection=None, status=None, root_run_id=None, parent_run_id=None, tags=tags,
                job_snapshot=remote_job.job_snapshot, execution_plan_snapshot=plan,
                parent_job_snapshot=remote_job.parent_job_snapshot,
                remote_job_origin=remote_job.get_remote_origin(),
                job_code_origin=remote_job.get_python_origin(),
                asset_selection=None, asset_check_selection=None, asset_graph=repository.asset_graph,
            )
            # The queued coordinator only enqueues: the daemon's workspace launches the run.
            instance.submit_run(run.run_id, workspace=None)  # type: ignore[arg-type]
            run_ids.append(run.run_id)
    return backfill_id, run_ids


def batched_backfill_progress(instance: DagsterInstance, backfill_id: str) -> dict[str, Any]:
    """A batched backfill's runs by status and its periods reported so far; `done` once every
    run finished."""
    runs = instance.get_runs(RunsFilter(tags={BATCH_TAG: backfill_id}))
    if not runs:
        raise LookupError(f"no runs of backfill {backfill_id} in this instance")
    by_status = Counter(run.status.value for run in runs)
    reported = 0
    for run in runs:
        frequency = run.tags.get("frequency", "")
        key = AssetKey(f"{frequency}_compliance_report")
        reported += sum(
            1 for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
            if entry.dagster_event.step_materialization_data.materialization.asset_key == key
        )
    finished = all(run.status in FINISHED for run in runs)
    failed = by_status.get(DagsterRunStatus.FAILURE.value, 0) + by_status.get(DagsterRunStatus.CANCELED.value, 0)
    return {
        "backfill_id": backfill_id,
        "status": ("COMPLETED_FAILED" if failed else "COMPLETED_SUCCESS") if finished else "IN_PROGRESS",
        "partitions": sum(int(run.tags.get(BATCH_PERIODS_TAG, "0")) for run in runs),
        "runs": dict(sorted(by_status.items())),
        "finished": reported,
        "failed": failed,
        "done": finished,
        "error": None,
    }
