"""The code location: wires assets, jobs, schedules, sensors and resources together."""

from dagster import Definitions

from compliance_reports.orchestration.audit_log_asset import audit_log

defs = Definitions(assets=[audit_log])
