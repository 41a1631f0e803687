"""One schedule per frequency: each tick requests every due (period, report) partition."""


import os
from datetime import timezone

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from compliance_reports.orchestration.dagster_runs import lookback, period_history
from compliance_reports.orchestration.report_partitions import (
    partition_key,
    report_id_partitions,
)
from compliance_reports.orchestration.resources import ComplianceDatabase
from compliance_reports.scheduling import RetryRule, first_batch, plan_due_runs
from compliance_reports.settings import load_settings

# Ticks are cheap (one configuration query, two run-storage queries), so a short interval
# keeps reports close to their slot; COMPLIANCE_SCHEDULE_CRON overrides it.
DEFAULT_TICK_CRON = "*/5 * * * *"


def tick_cron() -> str:
    return os.environ.get("COMPLIANCE_SCHEDULE_CRON", DEFAULT_TICK_CRON)


def build_report_schedule(frequency: str, report_job) -> ScheduleDefinition:
    @schedule(
        name=f"{frequency}_reports_schedule",
        cron_schedule=tick_cron(),
        execution_timezone="UTC",
        job=report_job,
        default_status=DefaultScheduleStatus.RUNNING,
        description=(
            f"Not a report slot: a check every few minutes ({tick_cron()} UTC). Each enabled "
            f"{frequency} report runs at its own time in its own timezone (schedule.time); "
            "the report list with every next slot, local and UTC, is `compliance-reports status`, "
            "one report's next slots `compliance-reports reports next-runs REPORT_ID`. A tick "
            "requests each ended period once its slot has passed (run key <report_id>:<period>) "
            "and re-requests a failed period after a cool-down, a bounded number of times."
        ),
    )
    def _schedule(context: ScheduleEvaluationContext, compliance_db: ComplianceDatabase):
        now = context.scheduled_execution_time.astimezone(timezone.utc)
        reports = compliance_db.enabled_reports(frequency)
        if not reports:
            return SkipReason(f"no enabled {frequency} reports")
        horizon = max(r.schedule.max_catch_up for r in reports)
        history = period_history(context.instance, frequency, since=now - lookback(frequency, horizon))
        settings = load_settings()
        plan = plan_due_runs(reports, now, history, RetryRule.from_settings(settings))
        due = first_batch(plan.runs, settings.max_runs_per_tick)
        if len(due) < len(plan.runs):
            # Thousands of requests in one tick cost Dagster one storage query each; the rest
            # stay due and the next ticks request them.
            context.log.info(f"{len(plan.runs)} {frequency} report runs are due; requesting the "
                             f"{len(due)} newest now (COMPLIANCE_MAX_RUNS_PER_TICK), the rest on the next ticks")
        if plan.explain():
            context.log.info(plan.explain())
        if not due:
            extra = f"; {plan.explain()}" if plan.explain() else ""
            return SkipReason(
                f"{len(reports)} enabled {frequency} reports: every period whose slot has "
                f"passed by {now.isoformat(timespec='minutes')} has run or is running{extra}"
            )
        # Reports applied since the sensor's last reconciliation still need their partition.
        partitions_def = report_id_partitions[frequency]
        registered = set(context.instance.get_dynamic_partitions(partitions_def.name))
        missing = sorted({d.report_id for d in due} - registered)
        if missing:
            context.instance.add_dynamic_partitions(partitions_def.name, missing)
        context.log.info(f"requesting {len(due)} {frequency} report runs")
        return [
            RunRequest(run_key=d.run_key, partition_key=partition_key(d.period, d.report_id), tags=d.tags)
            for d in due
        ]

    return _schedule
