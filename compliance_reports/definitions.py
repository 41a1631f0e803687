"""The code location: wires assets, jobs, schedules, sensors and resources together."""

from dagster import Definitions

from compliance_reports.orchestration.audit_log_asset import audit_log
from compliance_reports.orchestration.audit_log_check_job import audit_log_check_job, audit_log_check_schedule
from compliance_reports.orchestration.audit_log_freshness_check import organizations_not_silent
from compliance_reports.orchestration.dagster_warnings import silence_internal_warnings
from compliance_reports.orchestration.operations_jobs import (
    artifact_retention_job,
    artifact_retention_schedule,
    delivery_retry_job,
    delivery_retry_schedule,
)
from compliance_reports.orchestration.publication_assets import publication_assets
from compliance_reports.orchestration.publish_job import publish_report_job
from compliance_reports.orchestration.publish_sensor import build_publish_sensor
from compliance_reports.orchestration.report_assets import report_assets
from compliance_reports.orchestration.report_backfill_job import report_backfill_job
from compliance_reports.orchestration.report_failure_alert_sensor import report_failure_alert_sensor
from compliance_reports.orchestration.report_jobs import report_jobs
from compliance_reports.orchestration.report_schedules import build_report_schedule
from compliance_reports.orchestration.resources import default_resources
from compliance_reports.orchestration.schedule_requests_sensor import build_schedule_requests_sensor
from compliance_reports.settings import apply_environment

# The code server and every run worker import this module: they read the same environment
# file as the CLI (signing keys, the demo's mail port), the process environment winning.
apply_environment(default_dagster_home=False)
silence_internal_warnings()

report_schedules = [build_report_schedule(f, j) for f, j in report_jobs.items()]
schedule_requests_sensor = build_schedule_requests_sensor()
publish_report_sensor = build_publish_sensor(publish_report_job)

defs = Definitions(
    assets=[audit_log, *report_assets.values(), *publication_assets.values()],
    asset_checks=[organizations_not_silent],
    jobs=[*report_jobs.values(), audit_log_check_job, publish_report_job, report_backfill_job, delivery_retry_job, artifact_retention_job],
    schedules=[*report_schedules, audit_log_check_schedule, delivery_retry_schedule, artifact_retention_schedule],
    sensors=[schedule_requests_sensor, publish_report_sensor, report_failure_alert_sensor],
    resources=default_resources(),
)
