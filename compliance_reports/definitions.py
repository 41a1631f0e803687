"""The code location: wires assets, jobs, schedules, sensors and resources together."""

from dagster import Definitions

from compliance_reports.orchestration.audit_log_asset import audit_log
from compliance_reports.orchestration.report_assets import report_assets
from compliance_reports.orchestration.report_schedules import build_report_schedule
from compliance_reports.orchestration.resources import default_resources
from compliance_reports.orchestration.schedule_requests_sensor import build_schedule_requests_sensor

report_schedules = [build_report_schedule(f, a) for f, a in report_assets.items()]
schedule_requests_sensor = build_schedule_requests_sensor(report_assets)

defs = Definitions(
    assets=[audit_log, *report_assets.values()],
    schedules=report_schedules,
    sensors=[schedule_requests_sensor],
    resources=default_resources(),
)
