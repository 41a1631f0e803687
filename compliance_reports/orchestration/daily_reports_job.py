"""daily_reports_job: materializes one (period, report) partition of the daily compliance report."""

from dagster import define_asset_job

from compliance_reports.orchestration.report_assets import report_assets
from compliance_reports.orchestration.report_partitions import report_partitions

daily_reports_job = define_asset_job(
    name="daily_reports_job",
    selection=[report_assets["daily"]],
    partitions_def=report_partitions["daily"],
    # Job tags reach every run, UI launches and backfills included: the instance's per-frequency
    # concurrency limit keys on this one.
    tags={"frequency": "daily"},
    description="One daily report for one period (the daily_compliance_report asset); launched by the "
    "daily schedule, run-now requests, backfills and `compliance-reports run`.",
)
