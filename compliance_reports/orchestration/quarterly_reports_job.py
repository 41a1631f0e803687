"""quarterly_reports_job: materializes one (period, report) partition of the quarterly compliance report."""

from compliance_reports.orchestration.report_job_builder import build_report_job

quarterly_reports_job = build_report_job("quarterly")
