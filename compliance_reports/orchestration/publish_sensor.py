"""Launches the publish job once for each new report materialization, and again after a
cool-down for one whose publish run failed (artifact store or database unavailable longer than
the step retries), at most COMPLIANCE_RETRY_MAX times: a failed publish is never left behind."""


import json
from datetime import datetime, timedelta, timezone

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

from compliance_reports.orchestration.dagster_runs import (
    PUBLISHED_IN_RUN,
    REPORT_RUN_TAG,
    failed_publishes,
    report_asset_key,
)
from compliance_reports.orchestration.report_partitions import FREQUENCIES
from compliance_reports.scheduling import TRIGGERS, RetryRule, retry_decision, run_tags
from compliance_reports.settings import load_settings

BATCH = 100


def publish_run_request(frequency: str, record, report_trigger: str | None = None,
                        republish: bool = False) -> RunRequest | None:
    """The publish run for one materialization record; None when it is not a report run's, or
    when its run published it already (unless `republish`, an operator's explicit request).

    The publish run carries the trigger of the report run it publishes, so history tells a
    backfill's publication from a scheduled one.
    """
    materialization = record.asset_materialization
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    if "document_location" not in metadata:
        return None
    if metadata.get(PUBLISHED_IN_RUN) and not republish:
        return None  # a batched backfill run exported and delivered it itself
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
    tags[REPORT_RUN_TAG] = record.run_id
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
        tags={REPORT_RUN_TAG: sorted(report_run_ids)},
    ))
    return {record.dagster_run.tags.get(REPORT_RUN_TAG) for record in records}


def publish_retry_requests(instance, job_name: str, now: datetime, rule: RetryRule) -> list[RunRequest]:
    """A new publish run for each report run whose publish failed, once the cool-down since its
    last failure has passed, at most `rule.max_retries` times (trigger `retry`).

    A report run published since (by a later run, `publish retry` or a re-execution in the UI:
    any successful publish run) or with a publish run in flight is left alone. The request
    repeats the failed run's config; its run key names the retry, so a tick never asks twice.
    """
    since = now - (rule.cooldown * (rule.max_retries + 1) + timedelta(days=1))
    requests = []
    for report_run_id, (runs, last) in sorted(failed_publishes(instance, job_name, since).items()):
        decision = retry_decision(runs, now, rule)
        if decision.action != "retry":
            continue
        tags = {k: v for k, v in last.tags.items() if not k.startswith("dagster/")}
        tags["trigger"] = "retry"
        requests.append(RunRequest(
            run_key=f"publish:{report_run_id}:retry{decision.retry}", run_config=last.run_config, tags=tags,
        ))
    return requests


def build_publish_sensor(publish_job: JobDefinition) -> SensorDefinition:
    @sensor(
        name="publish_report_sensor",
        job=publish_job,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description=("Publishes each new compliance report materialization (export and deliver) exactly once; "
                     "requests a failed publish again after the retry cool-down."),
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
        requests += publish_retry_requests(context.instance, publish_job.name, datetime.now(timezone.utc),
                                           RetryRule.from_settings(load_settings()))
        if not requests:
            return SensorResult(skip_reason=SkipReason("no new report materializations or failed publishes due"),
                                cursor=json.dumps(cursor, sort_keys=True))
        return SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))

    return _sensor
