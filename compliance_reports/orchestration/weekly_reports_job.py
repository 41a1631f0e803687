"""weekly_reports_job: materializes one (period, report) partition of the weekly compliance report."""

from dagster import define_asset_job

from compliance_reports.orchestration.report_assets import report_assets
from compliance_reports.orchestration.report_partitions import report_partitions

weekly_reports_job = define_asset_job(
    name="weekly_reports_job",
    selection=[report_assets["weekly"]],
    partitions_def=report_partitions["weekly"],
    # Job tags reach every run, UI launches and backfills included: the instance's per-frequency
    # concurrency limit keys on this one.
    tags={"frequency": "weekly"},
    description="One weekly report for one period (the weekly_compliance_report asset); launched by the "
    "weekly schedule, run-now requests, backfills and `compliance-reports run`.",
)
