"""`make demo`, then `make dev`'s processes (the demo's mail catcher and the Dagster daemon) for a
few schedule ticks: the catch-up runs deliver, nothing fails, nothing is published twice; a
batched backfill queued before the daemon starts is launched by it, reports and delivers its
periods in its own runs, and gets no publish run.

The daemon runs the real dev workspace from the checkout with the environment `make dev` loads
(`compliance-reports env --shell`), the schedules ticking every minute instead of every five.
Budget: about two to four minutes.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from compliance_reports_tests.e2e.stack import BIN, ProcessGroup, clean_environment, run_cli, wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
IN_FLIGHT = (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
             DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING)
PUBLISH_JOB = "publish_report_job"
REPORT_JOBS = "_reports_job"  # daily_reports_job, ...; other jobs (retry sweep, audit_log check) may run too


def _exports(shell: str) -> dict[str, str]:
    """`export NAME=VALUE` lines, as the Makefile evaluates them."""
    values = {}
    for line in shell.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export "):].partition("=")
            values[name] = shlex.split(value)[0] if value else ""
    return values


def _settled(instance: DagsterInstance, demo_runs: set[str]):
    """The runs once the daemon launched some and none is in flight (None before)."""
    runs = [r.dagster_run for r in instance.get_run_records()]
    launched = [r for r in runs if r.run_id not in demo_runs and r.job_name.endswith(REPORT_JOBS)]
    if not launched or any(r.status in IN_FLIGHT for r in runs):
        return None
    # every report run the daemon launched has been published (the sensor ticks every 30 s)
    published = {r.tags.get("report_run_id") for r in runs
                 if r.job_name == PUBLISH_JOB and r.status == DagsterRunStatus.SUCCESS}
    if any(r.status == DagsterRunStatus.SUCCESS and r.run_id not in published for r in launched):
        return None
    return runs


@pytest.mark.timeout(420)
def test_demo_then_the_daemon_runs_clean(tmp_path):
    data = tmp_path / "data"
    env = clean_environment({"COMPLIANCE_DATA_DIR": str(data)})
    run_cli(env, ROOT, "demo", "run", "--examples", "examples", "--orgs", "1", "--days", "20",
            "--events-per-day", "40", timeout=300)
    # What `make dev` runs with: the environment file the demo wrote, schedules every minute.
    env.update(_exports(run_cli(env, ROOT, "env", "--shell")))
    env["COMPLIANCE_SCHEDULE_CRON"] = "* * * * *"
    instance = DagsterInstance.from_config(env["DAGSTER_HOME"])
    demo_runs = {r.dagster_run.run_id for r in instance.get_run_records()}
    assert demo_runs  # the demo's own report and publish runs
    # Periods older than the daily report's catch-up (3): only the backfill reports them.
    today = datetime.now(timezone.utc).date()
    backfill_periods = [(today - timedelta(days=d)).isoformat() for d in (12, 11, 10)]
    backfill = json.loads(run_cli(env, ROOT, "backfill", "stmarys-daily-summary", "--from", backfill_periods[0],
                                  "--to", backfill_periods[-1], "--batch-size", "2", "--json"))
    assert len(backfill["run_ids"]) == 2

    stack = ProcessGroup(tmp_path / "logs", env, ROOT)
    try:
        stack.start("mail-catcher", str(BIN / "compliance-reports"), "demo", "mail-catcher")
        stack.start("daemon", str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml"))
        try:
            runs = wait_until("the daemon's catch-up runs and their publish runs to finish",
                              lambda: _settled(instance, demo_runs), timeout=330, interval=3,
                              check=stack.check_alive)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{stack.report()}") from None
    finally:
        stack.stop_all()
        instance.dispose()

    new = [r for r in runs if r.run_id not in demo_runs]
    failed = [(r.job_name, r.run_id) for r in new if r.status != DagsterRunStatus.SUCCESS]
    assert not failed, failed
    report_runs = [r for r in new if r.job_name.endswith(REPORT_JOBS)]
    assert {r.tags.get("trigger") for r in report_runs} <= {"schedule", "catch_up"}
    backfill_runs = [r for r in new if r.job_name == "report_backfill_job"]
    assert sorted(r.run_id for r in backfill_runs) == sorted(backfill["run_ids"])
    # one publish run per report run: none for the demo's own materializations, none twice
    publishes = Counter(r.tags.get("report_run_id") for r in new if r.job_name == PUBLISH_JOB)
    assert set(publishes) == {r.run_id for r in report_runs} and set(publishes.values()) == {1}

    rows = json.loads(run_cli(env, ROOT, "deliveries", "list", "--json"))
    assert rows and {r["status"] for r in rows} == {"sent"}, [(r["destination"], r["status"]) for r in rows]
    delivered_runs = {r["run_id"] for r in rows}
    assert {r.run_id for r in report_runs} <= delivered_runs  # the catch-up reports reached their destinations
    # The backfill runs delivered their periods themselves (and no publish run did it again).
    assert {(r["run_id"], r["period"]) for r in rows if r["run_id"] in set(backfill["run_ids"])} >= {
        (run_id, period) for run_id, periods in zip(backfill["run_ids"], (backfill_periods[:2], backfill_periods[2:]))
        for period in periods}
