"""Alerts each failed report or publish run's notify_on_failure destinations, once per report and period."""

from dagster import DefaultSensorStatus, RunFailureSensorContext, run_failure_sensor

from compliance_reports.config import store as config_store
from compliance_reports.delivery.alerts import AlertFields, notify_failure
from compliance_reports.orchestration.dagster_runs import PERIOD_TAG, REPORT_TAG
from compliance_reports.orchestration.resources import ComplianceDatabase
from compliance_reports.settings import load_settings


def failure_summary(context: RunFailureSensorContext) -> str:
    lines = []
    for event in context.get_step_failure_events():
        error = getattr(event.event_specific_data, "error", None)
        text = error.message.strip() if error is not None and error.message else event.message
        lines.append(f"{event.step_key}: {text}")
    if not lines:
        lines.append(context.failure_event.message or "the run failed")
    return "\n".join(lines)[:2000]


@run_failure_sensor(
    name="report_failure_alert_sensor",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Notifies a failed report's notify_on_failure destinations (once per report and period).",
)
def report_failure_alert_sensor(context: RunFailureSensorContext, compliance_db: ComplianceDatabase):
    """Failure alert for report and publish runs."""
    tags = context.dagster_run.tags
    report_id = tags.get("report_id") or tags.get(REPORT_TAG)
    period = tags.get("period") or tags.get(PERIOD_TAG)
    if not report_id or not period:
        return  # not a compliance report run
    engine = compliance_db.app_engine()
    try:
        report = config_store.get_report(engine, report_id)
    except config_store.NotFoundError:
        context.log.warning(f"failed run {context.dagster_run.run_id}: report {report_id} no longer exists")
        return
    if not report.notify_on_failure:
        context.log.info(f"{report_id} {period} failed; it names no notify_on_failure destination")
        return
    destinations = [config_store.get_destination(engine, name) for name in report.notify_on_failure]
    run_id = context.dagster_run.run_id
    fields = AlertFields(
        report_id=report_id,
        period=period,
        organization_id=report.organization_id,
        run_id=run_id,
        run_url=f"{load_settings().ui_url}/runs/{run_id}",
        report_name=report.name,
    )
    outcomes = notify_failure(engine, destinations, fields, failure_summary(context), kind="run",
                              log=context.log.info)
    context.log.info(f"failure alert for {report_id} {period}: {[o.status for o in outcomes]}")
