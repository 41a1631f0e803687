"""Launches the publish job once for each new report materialization."""


import json

from dagster import (
    AssetRecordsFilter,
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from compliance_reports.orchestration.dagster_runs import report_asset_key
from compliance_reports.orchestration.report_partitions import FREQUENCIES
from compliance_reports.scheduling import run_tags

BATCH = 100


def publish_run_request(frequency: str, record) -> RunRequest | None:
    """The publish run for one materialization record; None when it is not a report run's."""
    materialization = record.asset_materialization
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    if "document_location" not in metadata:
        return None
    partition = materialization.partition or ""
    period, _, report_id = partition.partition("|")
    trigger = "retry" if metadata.get("republish") else "schedule"
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
            for record in result.records:
                request = publish_run_request(frequency, record)
                if request is not None:
                    requests.append(request)
                cursor[frequency] = record.storage_id
        if not requests:
            return SensorResult(skip_reason=SkipReason("no new report materializations"),
                                cursor=json.dumps(cursor, sort_keys=True))
        return SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))

    return _sensor
