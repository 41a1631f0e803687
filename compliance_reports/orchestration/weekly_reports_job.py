"""weekly_reports_job: materializes one (period, report) partition of the weekly compliance report."""

from compliance_reports.orchestration.report_job_builder import build_report_job

weekly_reports_job = build_report_job("weekly")
