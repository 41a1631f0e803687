"""What a failed report or publish run calls for: nothing yet, a run alert, or a "gave up" alert.

The failure sensor asks `react` once per failed run; this is the whole policy, in plain Python:

- a crashed run that Dagster's run retries re-execute: nothing (its re-execution decides);
- a publish run that failed because deliveries ended dead: nothing more (the delivery ledger
  raised one alert per distinct failed delivery: one incident, one alert);
- a report run whose period the schedule will request again after the cool-down: nothing (a
  failure that recovers by itself alerts nobody);
- a report run whose period failed more often than COMPLIANCE_RETRY_MAX allows retries:
  "gave_up" (the period is left failed);
- a publish run that the publish sensor will request again after the cool-down (its runs, in
  `runs`, are the publish runs of the same report run): nothing; after COMPLIANCE_RETRY_MAX
  retries: "gave_up";
- a batched backfill run (its period is the range FIRST..LAST of its batch): "run", naming the
  command that backfills the range again (no schedule or sensor retries a backfill);
- anything else (a publish run that names no report run, a period the schedule will not
  retry - outside its look-back, report disabled, already reported before): "run".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from compliance_reports.config.models import ReportConfig
from compliance_reports.scheduling import PeriodRuns, RetryRule, in_schedule_horizon, retry_decision


@dataclass(frozen=True)
class FailedRun:
    run_id: str
    stage: str  # report | publish | backfill
    report_id: str
    period: str
    failed_at: datetime
    will_retry: bool = False  # Dagster re-executes this crashed run
    alerted_by_ledger: bool = False  # the delivery ledger alerted each failed delivery


@dataclass(frozen=True)
class Reaction:
    alert: str | None  # None | run | gave_up
    reason: str  # one line, logged and put at the top of the alert


def react(failed: FailedRun, report: ReportConfig | None, runs: PeriodRuns, rule: RetryRule) -> Reaction:
    key = f"{failed.report_id} {failed.period}"
    rerun = f"re-run it with `compliance-reports run {failed.report_id} --period {failed.period}`"
    if failed.will_retry:
        return Reaction(None, f"{key}: Dagster re-executes the crashed run {failed.run_id}; its outcome decides")
    if failed.alerted_by_ledger:
        return Reaction(None, f"{key}: the delivery ledger alerted each failed delivery of this publication")
    if report is None:
        return Reaction(None, f"{key}: the report no longer exists; nothing to alert")
    if failed.stage == "publish":
        return _react_to_publish(failed, runs, rule, key)
    if failed.stage == "backfill":
        first, _, last = failed.period.partition("..")
        return Reaction("run", f"{key}: the batched backfill run failed; the periods it reported stand, and "
                               f"`compliance-reports backfill {failed.report_id} --from {first} --to {last or first}` "
                               "runs the range again")
    if runs.in_flight:
        return Reaction(None, f"{key}: another run of the period is queued or running; its outcome decides")
    if runs.materialized:
        return Reaction("run", f"{key}: a new run of an already reported period failed; the earlier "
                               "report stands and is not re-run automatically")
    if runs.failures > rule.max_retries:
        return Reaction("gave_up", f"{key}: failed {runs.failures} times ({runs.failures - 1} retries by "
                                   f"the schedule); the period is left failed: {rerun}")
    retry_at = (runs.last_failure_at or failed.failed_at) + rule.cooldown
    if in_schedule_horizon(report, failed.period, retry_at):
        return Reaction(None, f"{key}: the schedule requests it again at {retry_at.isoformat(timespec='minutes')} "
                              f"(retry {max(runs.failures, 1)} of {rule.max_retries})")
    return Reaction("run", f"{key}: not retried automatically (report disabled or the period is "
                           f"outside its schedule's look-back); {rerun}")


def _react_to_publish(failed: FailedRun, runs: PeriodRuns, rule: RetryRule, key: str) -> Reaction:
    resume = (f"resume it from its stored files (`compliance-reports publish retry --report {failed.report_id} "
              f"--period {failed.period}`) or re-execute the run")
    if not runs.failures:  # nothing known of its report run: nothing will retry it
        return Reaction("run", f"{key}: the publish run failed; {resume}")
    if runs.materialized or runs.in_flight:
        return Reaction(None, f"{key}: another publish run of the same report run succeeded or is running")
    # The publish sensor decides with the same rule (scheduling.retry_decision).
    decision = retry_decision(runs, failed.failed_at, rule)
    if decision.action == "gave_up":
        return Reaction("gave_up", f"{key}: the publish failed {runs.failures} times ({runs.failures - 1} "
                                   f"retries by the publish sensor); {resume}")
    return Reaction(None, f"{key}: the publish sensor requests it again at {decision.at.isoformat(timespec='minutes')} "
                          f"(retry {decision.retry} of {rule.max_retries})")
