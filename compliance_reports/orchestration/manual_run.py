"""Materializing one report period in-process on the configured instance (CLI `run`)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from dagster import DagsterInstance, Definitions

from compliance_reports.config.models import ReportConfig
from compliance_reports.orchestration.report_assets import report_assets
from compliance_reports.orchestration.report_jobs import report_jobs
from compliance_reports.orchestration.report_partitions import partition_key, report_id_partitions
from compliance_reports.orchestration.resources import default_resources
from compliance_reports.scheduling import check_requested_period, report_run_tags


def _failure_text(event) -> str:
    error = getattr(event.event_specific_data, "error", None)
    if error is not None and error.message:
        return error.message.strip()
    return event.message or event.event_type_value


def report_job(frequency: str, app_db_url: str | None = None, audit_db_url: str | None = None):
    """The frequency's named report job, resolved with resources on the given databases."""
    name = report_jobs[frequency].name
    defs = Definitions(assets=[report_assets[frequency]], jobs=[report_jobs[frequency]],
                       resources=default_resources(app_db_url=app_db_url, audit_db_url=audit_db_url))
    return defs.resolve_job_def(name)


def _materialized(result) -> dict[str, Any]:
    """What the run stored: verdict, event count and the stored document and events."""
    for event in result.get_asset_materialization_events():
        meta = {k: v.value for k, v in event.step_materialization_data.materialization.metadata.items()}
        return {
            "integrity_verdict": meta.get("integrity_verdict"),
            "event_count": meta.get("event_count"),
            "files": [meta[k] for k in ("document_location", "events_location") if meta.get(k)],
        }
    return {"integrity_verdict": None, "event_count": None, "files": []}


def run_report_now(
    report: ReportConfig,
    period: str,
    *,
    app_db_url: str | None = None,
    audit_db_url: str | None = None,
    instance: DagsterInstance | None = None,
    trigger: str = "manual",
    log_level: str = "INFO",
) -> dict[str, Any]:
    """Run the report's named job (`<frequency>_reports_job`) for one partition; the run is
    recorded in the instance's storage.

    A period that may not run (scheduling.check_requested_period) raises PeriodRefused before
    any run exists, so no failed run is left behind for that period.
    """
    check_requested_period(period, report.frequency, report.schedule.timezone, datetime.now(timezone.utc))
    owned = instance is None
    instance = instance or DagsterInstance.get()
    try:
        partitions = report_id_partitions[report.frequency]
        if not instance.has_dynamic_partition(partitions.name, report.id):
            instance.add_dynamic_partitions(partitions.name, [report.id])
        result = report_job(report.frequency, app_db_url, audit_db_url).execute_in_process(
            partition_key=partition_key(period, report.id),
            instance=instance,
            tags=report_run_tags(report.organization_id, trigger),
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )
        messages = [_failure_text(event) for event in result.all_events if event.is_failure]
        run = instance.get_run_by_id(result.run_id)
        return {
            "report_id": report.id,
            "period": period,
            "job": report_jobs[report.frequency].name,
            "run_id": result.run_id,
            "status": run.status.value if run else ("SUCCESS" if result.success else "FAILURE"),
            **_materialized(result),
            "messages": messages,
        }
    finally:
        if owned:
            instance.dispose()


def publish_now(
    instance: DagsterInstance,
    frequency: str,
    report_run_id: str,
    *,
    app_db_url: str | None = None,
    audit_db_url: str | None = None,
    log_level: str = "INFO",
) -> dict[str, Any]:
    """Run the publish job in-process for the materialization made by `report_run_id`.

    The publish sensor would launch the same run; publishing twice is harmless (stored files
    are reused and the ledger sends nothing twice).
    """
    from compliance_reports.orchestration.dagster_runs import report_asset_key
    from compliance_reports.orchestration.publish_job import publish_report_job
    from compliance_reports.orchestration.publish_sensor import publish_run_request

    records = instance.fetch_materializations(report_asset_key(frequency), limit=50).records
    record = next((r for r in records if r.run_id == report_run_id), None)
    if record is None:
        raise LookupError(f"run {report_run_id} materialized no {frequency} report")
    request = publish_run_request(frequency, record, republish=True)
    run_config = dict(request.run_config)
    run_config["loggers"] = {"console": {"config": {"log_level": log_level}}}
    result = publish_report_job.execute_in_process(
        run_config=run_config,
        instance=instance,
        tags={**request.tags, "trigger": "manual"},
        resources=default_resources(app_db_url=app_db_url, audit_db_url=audit_db_url),
        raise_on_error=False,
    )
    exported = result.output_for_node("export_report") if result.success or _has_output(result) else None
    return {
        "run_id": result.run_id,
        "status": "SUCCESS" if result.success else "FAILURE",
        "published": exported,
        "messages": [_failure_text(e) for e in result.all_events if e.is_failure],
    }


def _has_output(result) -> bool:
    try:
        result.output_for_node("export_report")
        return True
    except Exception:  # noqa: BLE001 - the export step did not produce an output
        return False
