"""monthly_reports_job: materializes one (period, report) partition of the monthly compliance report."""

from dagster import define_asset_job

from compliance_reports.orchestration.report_assets import report_assets
from compliance_reports.orchestration.report_partitions import report_partitions

monthly_reports_job = define_asset_job(
    name="monthly_reports_job",
    selection=[report_assets["monthly"]],
    partitions_def=report_partitions["monthly"],
    # Job tags reach every run, UI launches and backfills included: the instance's per-frequency
    # concurrency limit keys on this one.
    tags={"frequency": "monthly"},
    description="One monthly report for one period (the monthly_compliance_report asset); launched by the "
    "monthly schedule, run-now requests, backfills and `compliance-reports run`.",
)
