"""Launches the publish job once for each new report materialization."""


import json

from dagster import (
    AssetRecordsFilter,
    DagsterRunStatus,
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from compliance_reports.orchestration.dagster_runs import report_asset_key
from compliance_reports.orchestration.report_partitions import FREQUENCIES
from compliance_reports.scheduling import TRIGGERS, run_tags

BATCH = 100


def publish_run_request(frequency: str, record, report_trigger: str | None = None) -> RunRequest | None:
    """The publish run for one materialization record; None when it is not a report run's.

    The publish run carries the trigger of the report run it publishes, so history tells a
    backfill's publication from a scheduled one.
    """
    materialization = record.asset_materialization
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    if "document_location" not in metadata:
        return None
    partition = materialization.partition or ""
    period, _, report_id = partition.partition("|")
    trigger = report_trigger or "schedule"
    config = {
        "report_id": report_id,
        "period": period,
        "frequency": frequency,
        "report_run_id": record.run_id,
        "document_location": metadata["document_location"],
        "events_location": metadata.get("events_location") or "",
        "materialization_id": record.storage_id,
    }
    tags = run_tags(report_id, metadata.get("organization_id", ""), frequency, period, trigger)
    tags["report_run_id"] = record.run_id
    return RunRequest(
        run_key=f"publish:{record.storage_id}",
        run_config={"ops": {"export_report": {"config": config}}},
        tags=tags,
    )


def report_triggers(instance, run_ids: set[str]) -> dict[str, str]:
    """run id -> trigger of the report runs (one run-storage query per batch)."""
    if not run_ids:
        return {}
    triggers = {}
    for record in instance.get_run_records(RunsFilter(run_ids=sorted(run_ids))):
        tags = record.dagster_run.tags
        trigger = tags.get("trigger") or ("backfill" if "dagster/backfill" in tags else None)
        if trigger in TRIGGERS:
            triggers[record.dagster_run.run_id] = trigger
    return triggers


def already_published(instance, job_name: str, report_run_ids: set[str]) -> set[str]:
    """Report runs that a publish run has already published with success (one query per batch).

    `compliance-reports run`/`demo run` publish in-process right away; the sensor, meeting the
    same materialization later, must not launch a second publish run for it.
    """
    if not report_run_ids:
        return set()
    records = instance.get_run_records(RunsFilter(
        job_name=job_name, statuses=[DagsterRunStatus.SUCCESS],
        tags={"report_run_id": sorted(report_run_ids)},
    ))
    return {record.dagster_run.tags.get("report_run_id") for record in records}


def build_publish_sensor(publish_job: JobDefinition) -> SensorDefinition:
    @sensor(
        name="publish_report_sensor",
        job=publish_job,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description="Publishes each new compliance report materialization (export and deliver) exactly once.",
    )
    def _sensor(context: SensorEvaluationContext):
        # Cursor: the last materialization storage id handled per frequency (small, monotonic).
        cursor = json.loads(context.cursor) if context.cursor else {}
        requests: list[RunRequest] = []
        for frequency in FREQUENCIES:
            after = cursor.get(frequency, 0)
            result = context.instance.fetch_materializations(
                AssetRecordsFilter(asset_key=report_asset_key(frequency), after_storage_id=after),
                limit=BATCH,
                ascending=True,
            )
            run_ids = {r.run_id for r in result.records}
            triggers = report_triggers(context.instance, run_ids)
            published = already_published(context.instance, publish_job.name, run_ids)
            for record in result.records:
                request = publish_run_request(frequency, record, triggers.get(record.run_id))
                if request is not None and record.run_id not in published:
                    requests.append(request)
                cursor[frequency] = record.storage_id
        if not requests:
            return SensorResult(skip_reason=SkipReason("no new report materializations"),
                                cursor=json.dumps(cursor, sort_keys=True))
        return SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))

    return _sensor
