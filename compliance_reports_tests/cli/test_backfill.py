"""`compliance-reports backfill` on a real instance (DAGSTER_HOME in a temporary folder): the
backfill is recorded with the report's partition keys, and the daemon's backfill loop turns it
into one daily_reports_job run per period."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta, timezone

from dagster import DagsterInstance, RunsFilter
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.backfill import execute_backfill_iteration

from compliance_reports.orchestration.report_backfills import backfill_progress


def _days_ago(days: int) -> str:
    return (datetime.now(timezone.utc).date() - timedelta(days=days)).isoformat()


def test_backfill_records_the_report_partitions_and_the_daemon_launches_named_job_runs(cli):
    first, last = _days_ago(5), _days_ago(3)
    launched = json.loads(cli("backfill", "berlin-daily", "--from", first, "--to", last, "--json").stdout)
    periods = [_days_ago(5), _days_ago(4), _days_ago(3)]
    assert launched["periods"] == periods

    with DagsterInstance.get() as instance:
        backfill = instance.get_backfill(launched["backfill_id"])
        assert backfill.status == BulkActionStatus.REQUESTED
        assert backfill.partition_names == [f"{p}|berlin-daily" for p in periods]
        assert backfill.partition_set_name == "daily_reports_job_partition_set"
        assert backfill.partition_set_origin.repository_origin.code_location_origin.location_name == (
            "compliance_reports")
        assert "berlin-daily" in instance.get_dynamic_partitions("daily_reports")

        # One pass of the daemon's backfill loop, on a workspace holding the code location.
        origin = InProcessCodeLocationOrigin(
            LoadableTargetOrigin(module_name="compliance_reports.definitions"), location_name="compliance_reports")
        with create_test_daemon_workspace_context(InProcessWorkspaceLoadTarget(origin), instance) as workspace:
            errors = [e for e in execute_backfill_iteration(workspace, logging.getLogger("test")) if e]
        assert not errors, errors
        runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": launched["backfill_id"]}))
        assert sorted(r.tags["dagster/partition"] for r in runs) == backfill.partition_names
        assert {r.job_name for r in runs} == {"daily_reports_job"}
        assert {r.tags["frequency"] for r in runs} == {"daily"}

        # What --wait polls: three partitions, runs not finished (queued, no run worker here).
        state = backfill_progress(instance, launched["backfill_id"])
        assert (state["partitions"], state["finished"], state["done"]) == (3, 0, False)
        assert sum(state["runs"].values()) == 3

    # --wait gives up after --timeout with exit 1, the backfill's state in the JSON.
    waited = cli("backfill", "berlin-daily", "--from", first, "--to", first, "--wait", "--timeout", "1",
                 "--poll", "0.2", "--json", expect=1)
    state = json.loads(waited.stdout)["state"]
    assert state["status"] == "REQUESTED" and state["done"] is False and state["partitions"] == 1
    text = cli("backfill", "berlin-daily", "--from", first, "--to", first, "--wait", "--timeout", "1",
               "--poll", "0.2", expect=1)
    assert "1 periods" in text.stdout and "REQUESTED, runs {}" in text.stdout
    assert "backfill requested" in text.stderr  # the progress bar, on stderr



def test_backfill_refuses_bad_ranges_with_exit_2(cli):
    cli("status", "--json")  # creates the instance at DAGSTER_HOME
    reversed_ = cli("backfill", "berlin-daily", "--from", _days_ago(2), "--to", _days_ago(4), expect=2)
    assert "is before --from" in reversed_.stderr
    future = (date.today() + timedelta(days=3)).isoformat()
    assert "--to: " in cli("backfill", "berlin-daily", "--from", _days_ago(2), "--to", future, expect=2).stderr
    assert "--from: " in cli("backfill", "berlin-daily", "--from", "2026-13-01", "--to", _days_ago(2),
                             expect=2).stderr
    with DagsterInstance.get() as instance:
        assert instance.get_backfills() == []
