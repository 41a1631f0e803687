"""One schedule per frequency: each tick requests every due (period, report) partition."""


import os
from datetime import timezone

from dagster import (
    DefaultScheduleStatus,
    JobDefinition,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    partition_loading_context,
    schedule,
)

from compliance_reports.orchestration.dagster_runs import lookback, period_history
from compliance_reports.orchestration.report_partitions import (
    FIRST_PERIODS,
    partition_key,
    period_partitions,
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
        # Dagster validates each unresolved request's partition key with one storage query for
        # the dynamic report dimension (1.5 s for 500 requests); the report ids were checked
        # against the storage above in one query, so the requests carry their partition tags
        # (what Dagster would add) and only the period, a computation, is checked here.
        with partition_loading_context(effective_dt=now):
            outside = [d for d in due if not period_partitions[frequency].has_partition_key(d.period)]
        if outside:
            context.log.warning(
                f"not requested: {len(outside)} {frequency} periods outside the partitions "
                f"(first period {FIRST_PERIODS[frequency]}, COMPLIANCE_FIRST_PERIOD_{frequency.upper()}), "
                + ", ".join(f"{d.report_id} {d.period}" for d in outside[:5]))
            due = [d for d in due if d not in outside]
        context.log.info(f"requesting {len(due)} {frequency} report runs")
        job = context.repository_def.get_job(report_job.name)
        return [resolved_request(job, d.run_key, d.period, d.report_id, d.tags) for d in due]

    return _schedule


def resolved_request(job: JobDefinition, run_key: str, period: str, report_id: str,
                     tags: dict[str, str]) -> RunRequest:
    """A run request of one (period, report) partition of `job`, resolved as Dagster would
    resolve it: its partition tags and run configuration set."""
    key = str(partition_key(period, report_id))
    return RunRequest(run_key=run_key, partition_key=key,
                      run_config=job.get_run_config_for_partition_key(key),
                      tags={**tags, **job.get_tags_for_partition_key(key, None)})
