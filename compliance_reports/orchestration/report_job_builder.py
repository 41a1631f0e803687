"""How each frequency's named report job is defined (one job file per frequency uses it)."""

from dagster import define_asset_job

from compliance_reports.orchestration.report_assets import report_assets
from compliance_reports.orchestration.report_partitions import report_partitions


def build_report_job(frequency: str):
    """`<frequency>_reports_job`: materializes one (period, report) partition of the frequency's report."""
    return define_asset_job(
        name=f"{frequency}_reports_job",
        selection=[report_assets[frequency]],
        partitions_def=report_partitions[frequency],
        # Job tags reach every run, UI launches and backfills included: the instance's
        # per-frequency concurrency limit keys on this one.
        tags={"frequency": frequency},
        description=f"One {frequency} report for one period (the {frequency}_compliance_report asset); "
        f"launched by the {frequency} schedule, run-now requests, backfills and `compliance-reports run`.",
    )
