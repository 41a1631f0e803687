"""The named report job of each frequency, for the schedules, the sensors and the CLI."""

from compliance_reports.orchestration.daily_reports_job import daily_reports_job
from compliance_reports.orchestration.monthly_reports_job import monthly_reports_job
from compliance_reports.orchestration.quarterly_reports_job import quarterly_reports_job
from compliance_reports.orchestration.weekly_reports_job import weekly_reports_job

report_jobs = {
    "daily": daily_reports_job,
    "weekly": weekly_reports_job,
    "monthly": monthly_reports_job,
    "quarterly": quarterly_reports_job,
}
