"""Operational jobs: the delivery retry sweep and retention."""

from datetime import datetime, timedelta, timezone
from pathlib import Path
import tempfile

from dagster import (
    DagsterRunStatus,
    DefaultScheduleStatus,
    OpExecutionContext,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SkipReason,
    job,
    op,
    schedule,
)

from compliance_reports.config import store as config_store
from compliance_reports.delivery import ledger
from compliance_reports.delivery.alerts import due_alert_rows, send_due_alerts
from compliance_reports.delivery.dispatcher import retry_due
from compliance_reports.orchestration.resources import ArtifactStoreResource, ComplianceDatabase
from compliance_reports.exporters.publishing import stored_publication_loader
from compliance_reports.operations.retention import purge_files, record
from compliance_reports.settings import load_settings


def _now() -> datetime:
    return datetime.now(timezone.utc)


@op(description="Send recorded failure alerts; re-deliver due failed deliveries from the stored files.")
def retry_due_deliveries(
    context: OpExecutionContext, compliance_db: ComplianceDatabase, artifact_store: ArtifactStoreResource
) -> None:
    engine = compliance_db.app_engine()
    store = artifact_store.store(engine)
    # Alerts recorded by the failure sensor go out first, with their outcome in this run's log.
    alerts = send_due_alerts(engine, lambda name: config_store.get_destination(engine, name),
                             now_fn=_now, log=context.log.warning)
    for outcome in alerts:
        context.log.info(f"alert {outcome.row_id} to {outcome.destination} {outcome.recipient}: {outcome.status}")
    with tempfile.TemporaryDirectory(prefix="redeliver-") as scratch:
        def load_alert_destinations(report_id: str):
            report = config_store.get_report(engine, report_id)
            return [config_store.get_destination(engine, n) for n in report.notify_on_failure]

        outcomes = retry_due(
            engine,
            stored_publication_loader(engine, store, Path(scratch)),
            lambda name: config_store.get_destination(engine, name),
            log=context.log.info,
            load_alert_destinations=load_alert_destinations,
        )
    statuses = {}
    for outcome in outcomes:
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    context.add_output_metadata({"attempted": len(outcomes), "alerts_sent": sum(o.status == "sent" for o in alerts),
                                 **{f"status/{k}": v for k, v in statuses.items()}})


@job(description="Retry sweep of the delivery ledger (delivery_retry_job).")
def delivery_retry_job():
    """Re-delivery of due failed deliveries."""
    retry_due_deliveries()


@schedule(
    name="delivery_retry_schedule",
    cron_schedule="*/5 * * * *",
    job=delivery_retry_job,
    default_status=DefaultScheduleStatus.RUNNING,
    execution_timezone="UTC",
    description="Launches the delivery retry sweep when the ledger has deliveries due for another attempt.",
)
def delivery_retry_schedule(context: ScheduleEvaluationContext, compliance_db: ComplianceDatabase):
    """Delivery retry sweep, launched only when something is due."""
    engine = compliance_db.app_engine()
    due = ledger.due_rows(engine, None, 1) or due_alert_rows(engine, _now(), 1)  # ledger: the database's clock
    if not due:
        return SkipReason("no deliveries are due for another attempt")
    return RunRequest()


@op(description="Remove expired artifacts, stored deliveries and old Dagster runs; record each removal.")
def apply_retention(
    context: OpExecutionContext, compliance_db: ComplianceDatabase, artifact_store: ArtifactStoreResource
) -> None:
    settings = load_settings()
    engine = compliance_db.app_engine()
    now = _now()
    storage = []
    for row in config_store.list_destinations(engine):
        if row["type"] != "storage":
            continue
        try:
            storage.append(config_store.get_destination(engine, row["name"]))
        except Exception as exc:  # noqa: BLE001 - e.g. stored before a rule it breaks existed
            context.log.warning(f"retention skips destination {row['name']}: {type(exc).__name__}: {exc}")
    result = purge_files(engine, artifact_store.store(engine), storage, now, settings.artifact_retention_days,
                         context.run_id, log=context.log.warning)
    cutoff = now - timedelta(days=settings.run_retention_days)
    old_runs = context.instance.get_run_records(
        RunsFilter(created_before=cutoff, statuses=[DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED])
    )
    for run_record in old_runs:
        context.instance.delete_run(run_record.dagster_run.run_id)
        result.dagster_runs.append(run_record.dagster_run.run_id)
    record(engine, "dagster_run", result.dagster_runs, now, context.run_id)
    context.log.info(f"retention removed {result.counts()}")
    context.add_output_metadata(result.counts())


@job(description="Retention of artifacts and Dagster runs; never the delivery ledger (artifact_retention_job).")
def artifact_retention_job():
    """Retention of artifacts, stored deliveries and old runs."""
    apply_retention()


@schedule(
    name="artifact_retention_schedule",
    cron_schedule="30 3 * * *",
    job=artifact_retention_job,
    default_status=DefaultScheduleStatus.RUNNING,
    execution_timezone="UTC",
    description="Daily retention: expired artifacts and stored deliveries, Dagster runs past their age.",
)
def artifact_retention_schedule(context: ScheduleEvaluationContext):
    """Daily retention run."""
    return RunRequest()
