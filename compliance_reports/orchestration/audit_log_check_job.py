"""audit_log_check_job: observes the audit log and runs its freshness check, hourly."""

from dagster import AssetSelection, DefaultScheduleStatus, ScheduleDefinition, define_asset_job

from compliance_reports.orchestration.audit_log_freshness_check import organizations_not_silent

audit_log_check_job = define_asset_job(
    name="audit_log_check_job",
    selection=AssetSelection.checks(organizations_not_silent),
    description="Row count and newest event per organization of audit_log; warns on a silent organization.",
)

audit_log_check_schedule = ScheduleDefinition(
    name="audit_log_check_schedule",
    job=audit_log_check_job,
    cron_schedule="17 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Hourly (minute 17, UTC): observe audit_log and check that no organization went silent.",
)
