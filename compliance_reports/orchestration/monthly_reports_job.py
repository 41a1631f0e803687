"""monthly_reports_job: materializes one (period, report) partition of the monthly compliance report."""

from compliance_reports.orchestration.report_job_builder import build_report_job

monthly_reports_job = build_report_job("monthly")
