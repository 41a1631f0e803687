"""Reacts to failed report and publish runs: records the failure alerts they call for.

A plain sensor over Dagster's run-failure events (not `@run_failure_sensor`, which moves its
cursor past a run whose reaction raised, losing the alert). Cursor: the storage id of the last
failure event handled. Per failed run, `operations.failed_runs.react` decides; an alert is
recorded in the delivery ledger (never sent here: a slow or dead mail server must not block a
tick) and a `delivery_retry_job` run is requested to send it at once.

If the reaction cannot be recorded because the database or the artifact store is unavailable,
the tick fails and the cursor stays where it was: the next tick handles the same runs again
(recording is idempotent). Any other error is logged, written to the alert fallback file, and
passed over, so one malformed run cannot stop the sensor.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from dagster import (
    DagsterEventType,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    RunStatusChangeRecordsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from compliance_reports.config import store as config_store
from compliance_reports.delivery.alert_fallback import write_once
from compliance_reports.delivery.alerts import AlertFields, notify_failure
from compliance_reports.operations.failed_runs import FailedRun, react
from compliance_reports.operations.transient_errors import classify
from compliance_reports.orchestration.dagster_runs import (
    PERIOD_TAG,
    REPORT_RUN_TAG,
    REPORT_TAG,
    WILL_RETRY_TAG,
    publish_runs_of,
    runs_of_period,
)
from compliance_reports.orchestration.operations_jobs import delivery_retry_job
from compliance_reports.orchestration.publish_job import HANDLED_BY_LEDGER
from compliance_reports.orchestration.resources import ComplianceDatabase
from compliance_reports.scheduling import PeriodRuns, RetryRule
from compliance_reports.settings import load_settings

BATCH = 50
PUBLISH_JOB = "publish_report_job"
BACKFILL_JOB = "report_backfill_job"


def parse_cursor(cursor: str | None) -> int | None:
    """The last handled storage id; the cursor of the former @run_failure_sensor is understood."""
    if not cursor:
        return None
    if cursor.lstrip("-").isdigit():
        return int(cursor)
    try:
        return int(json.loads(cursor)["record_id"])
    except (ValueError, KeyError, TypeError):
        return None


def step_failures(instance, run_id: str) -> list:
    return [e for e in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE) if e.is_dagster_event]


def _root_message(error) -> str | None:
    """The user code's own error, not Dagster's wrapper around it ("Error occurred while ...")."""
    while error is not None and error.cause is not None and (
        error.cls_name.startswith("Dagster") or "RetryRequested" in error.cls_name
    ):
        error = error.cause
    return error.message.strip() if error is not None and error.message else None


def failure_summary(events, fallback_message: str | None) -> str:
    lines = []
    for entry in events:
        event = entry.dagster_event
        error = getattr(event.event_specific_data, "error", None)
        lines.append(f"{event.step_key}: {_root_message(error) or event.message}")
    if not lines:
        lines.append(fallback_message or "the run failed")
    return "\n".join(lines)[:2000]


def alerted_by_ledger(events) -> bool:
    key, value = next(iter(HANDLED_BY_LEDGER.items()))
    for entry in events:
        data = getattr(entry.dagster_event.event_specific_data, "user_failure_data", None)
        metadata = getattr(data, "metadata", None) or {}
        if key in metadata and getattr(metadata[key], "value", metadata[key]) == value:
            return True
    return False


def react_to_failed_run(context, run, failure_record, compliance_db: ComplianceDatabase) -> bool:
    """Record what one failed run calls for; True when an alert was recorded."""
    tags = run.tags
    report_id = tags.get("report_id") or tags.get(REPORT_TAG)
    period = tags.get("period") or tags.get(PERIOD_TAG)
    if not report_id or not period:
        return False  # not a compliance report run
    instance = context.instance
    engine = compliance_db.app_engine()
    try:
        report = config_store.get_report(engine, report_id)
    except config_store.NotFoundError:
        report = None
    events = step_failures(instance, run.run_id)
    stage = {PUBLISH_JOB: "publish", BACKFILL_JOB: "backfill"}.get(run.job_name, "report")
    failed = FailedRun(
        run_id=run.run_id, stage=stage, report_id=report_id, period=period,
        failed_at=datetime.fromtimestamp(failure_record.timestamp, timezone.utc),
        will_retry=tags.get(WILL_RETRY_TAG) == "true", alerted_by_ledger=alerted_by_ledger(events),
    )
    settings = load_settings()
    runs = PeriodRuns()
    frequency = tags.get("frequency") or (report.frequency if report else None)
    if stage == "report" and frequency:
        runs = runs_of_period(instance, frequency, report_id, period)
    elif stage == "publish" and tags.get(REPORT_RUN_TAG):
        runs = publish_runs_of(instance, run.job_name, tags[REPORT_RUN_TAG])
    reaction = react(failed, report, runs, RetryRule.from_settings(settings))
    context.log.info(f"failed run {run.run_id}: {reaction.reason}")
    if reaction.alert is None:
        return False
    destinations = []
    for name in report.notify_on_failure:
        try:
            destinations.append(config_store.get_destination(engine, name))
        except config_store.NotFoundError:
            context.log.warning(f"{report_id}: notify_on_failure destination {name!r} does not exist")
    fields = AlertFields(
        report_id=report_id, period=period, organization_id=report.organization_id, run_id=run.run_id,
        run_url=f"{settings.ui_url}/runs/{run.run_id}", report_name=report.name,
    )
    message = f"{reaction.reason}\n\n{failure_summary(events, failure_record.event_log_entry.message)}"
    # A failed publish is a different failure from a failed report run of the same period.
    failures = ["run:publish"] if stage == "publish" else []
    notify_failure(engine, destinations, fields, message, kind=reaction.alert, failures=failures, send=False,
                   log=context.log.warning)
    return True


@sensor(
    name="report_failure_alert_sensor",
    job=delivery_retry_job,
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description=(
        "Records the failure alert a failed report or publish run calls for (none while the "
        "schedule or Dagster retries it) and launches delivery_retry_job to send it."
    ),
)
def report_failure_alert_sensor(context: SensorEvaluationContext, compliance_db: ComplianceDatabase):
    instance = context.instance
    after = parse_cursor(context.cursor)
    if after is None:
        latest = instance.fetch_run_status_changes(DagsterEventType.RUN_FAILURE, limit=1).records
        start = latest[0].storage_id if latest else 0
        return SensorResult(skip_reason=SkipReason(f"starting after failure event {start}"), cursor=str(start))
    records = instance.fetch_run_status_changes(
        RunStatusChangeRecordsFilter(event_type=DagsterEventType.RUN_FAILURE, after_storage_id=after),
        limit=BATCH, ascending=True,
    ).records
    run_ids = sorted({r.run_id for r in records})
    runs = {r.dagster_run.run_id: r.dagster_run for r in instance.get_run_records(RunsFilter(run_ids=run_ids))} \
        if run_ids else {}
    recorded = 0
    for record in records:
        run = runs.get(record.run_id)
        if run is not None:
            try:
                recorded += react_to_failed_run(context, run, record, compliance_db)
            except Exception as exc:
                if classify(exc).transient:
                    raise  # the tick fails and keeps its cursor: the next tick handles this run again
                context.log.exception(f"failed run {run.run_id}: its failure alert could not be recorded")
                write_once(load_settings().alerts_log, {
                    "id": f"sensor:{run.run_id}", "kind": "run", "run_id": run.run_id,
                    "report_id": run.tags.get("report_id"), "period": run.tags.get("period"),
                    "reason": f"the failure sensor could not record an alert: {type(exc).__name__}: {exc}"[:1000],
                })
        after = record.storage_id
    if not recorded:
        reason = f"{len(records)} failed run(s) handled; no alert due" if records else "no new failed runs"
        return SensorResult(skip_reason=SkipReason(reason), cursor=str(after))
    return SensorResult(run_requests=[RunRequest(run_key=f"alerts:{after}", tags={"compliance_reports/stage": "alerts"})],
                        cursor=str(after))
