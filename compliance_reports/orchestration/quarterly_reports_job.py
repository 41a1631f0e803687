"""quarterly_reports_job: materializes one (period, report) partition of the quarterly compliance report."""

from dagster import define_asset_job

from compliance_reports.orchestration.report_assets import report_assets
from compliance_reports.orchestration.report_partitions import report_partitions

quarterly_reports_job = define_asset_job(
    name="quarterly_reports_job",
    selection=[report_assets["quarterly"]],
    partitions_def=report_partitions["quarterly"],
    # Job tags reach every run, UI launches and backfills included: the instance's per-frequency
    # concurrency limit keys on this one.
    tags={"frequency": "quarterly"},
    description="One quarterly report for one period (the quarterly_compliance_report asset); launched by the "
    "quarterly schedule, run-now requests, backfills and `compliance-reports run`.",
)
