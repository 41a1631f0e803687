"""`compliance-reports backfill` on a real instance (DAGSTER_HOME in a temporary folder): the
backfill is recorded with the report's partition keys, and the daemon's backfill loop turns it
into one daily_reports_job run per period."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta, timezone

from dagster import AssetCheckKey, AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.backfill import execute_backfill_iteration

from compliance_reports.orchestration.publish_sensor import publish_run_request
from compliance_reports.orchestration.report_backfills import backfill_progress, batched_backfill_progress


def _days_ago(days: int) -> str:
    return (datetime.now(timezone.utc).date() - timedelta(days=days)).isoformat()


def test_backfill_records_the_report_partitions_and_the_daemon_launches_named_job_runs(cli):
    first, last = _days_ago(5), _days_ago(3)
    launched = json.loads(cli("backfill", "berlin-daily", "--from", first, "--to", last, "--per-period",
                              "--json").stdout)
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
    waited = cli("backfill", "berlin-daily", "--from", first, "--to", first, "--per-period", "--wait",
                 "--timeout", "1", "--poll", "0.2", "--json", expect=1)
    state = json.loads(waited.stdout)["state"]
    assert state["status"] == "REQUESTED" and state["done"] is False and state["partitions"] == 1
    text = cli("backfill", "berlin-daily", "--from", first, "--to", first, "--per-period", "--wait",
               "--timeout", "1", "--poll", "0.2", expect=1)
    assert "1 periods" in text.stdout and "REQUESTED, runs {}" in text.stdout
    assert "backfill requested" in text.stderr  # the progress bar, on stderr


def _execute_queued(instance, run_id: str) -> None:
    """What the run worker the daemon starts does with a queued run: load its job from the
    run's own code origin and execute it."""
    from dagster._utils.hosted_user_process import recon_job_from_origin
    from dagster._core.events import DagsterEvent, DagsterEventType
    from dagster._core.execution.api import execute_run

    run = instance.get_run_by_id(run_id)
    # The daemon's dequeue step: the run is STARTING when its worker begins.
    instance.report_dagster_event(
        DagsterEvent(event_type_value=DagsterEventType.RUN_STARTING.value, job_name=run.job_name), run_id=run_id)
    execute_run(recon_job_from_origin(run.job_code_origin), instance.get_run_by_id(run_id), instance)


def test_batched_backfill_builds_checks_and_publishes_every_period_in_few_runs(cli, tmp_path):
    destination = tmp_path / "archive.yaml"
    destination.write_text("name: archive\ntype: storage\nprovider: local\nbase_path: out\n")
    cli("destinations", "apply", "-f", str(destination))
    report = tmp_path / "r2.yaml"
    report.write_text(f"{REPORT_WITH_ARCHIVE}")
    cli("reports", "apply", "-f", str(report))
    cli("demo", "seed", "--orgs", "1", "--days", "8", "--events-per-day", "40")
    first, last = _days_ago(6), _days_ago(2)
    periods = [_days_ago(d) for d in range(6, 1, -1)]
    launched = json.loads(cli("backfill", "stmarys-daily", "--from", first, "--to", last, "--batch-size", "3",
                              "--json").stdout)
    assert launched["periods"] == periods and launched["batch_size"] == 3
    assert len(launched["run_ids"]) == 2

    with DagsterInstance.get() as instance:
        runs = instance.get_runs(RunsFilter(tags={"compliance_reports/backfill": launched["backfill_id"]}))
        assert {r.status for r in runs} == {DagsterRunStatus.QUEUED}
        assert {r.job_name for r in runs} == {"report_backfill_job"}
        assert sorted(r.tags["period"] for r in runs) == [f"{periods[0]}..{periods[2]}", f"{periods[3]}..{periods[4]}"]
        assert {r.tags["trigger"] for r in runs} == {"backfill"}
        # The daemon finds the job in its workspace by the location name the run names.
        assert {r.remote_job_origin.location_name for r in runs} == {"compliance_reports"}
        state = batched_backfill_progress(instance, launched["backfill_id"])
        assert (state["partitions"], state["finished"], state["done"]) == (5, 0, False)

        for run_id in launched["run_ids"]:
            _execute_queued(instance, run_id)
        assert {instance.get_run_by_id(r).status for r in launched["run_ids"]} == {DagsterRunStatus.SUCCESS}
        state = batched_backfill_progress(instance, launched["backfill_id"])
        assert (state["finished"], state["done"], state["status"]) == (5, True, "COMPLETED_SUCCESS")

        key = AssetKey("daily_compliance_report")
        partitions = {f"{p}|stmarys-daily" for p in periods}
        assert partitions <= set(instance.get_materialized_partitions(key))
        published = set(instance.get_materialized_partitions(AssetKey("daily_report_publication")))
        assert partitions <= published
        records = instance.fetch_materializations(key, limit=10).records
        assert len(records) == 5
        # Published in the batch run: the publish sensor must not publish them again.
        assert all(publish_run_request("daily", r) is None for r in records)
        assert all(publish_run_request("daily", r, republish=True) is not None for r in records)
        # Each period's checks, evaluated for its own partition.
        history = instance.event_log_storage.get_asset_check_execution_history(
            AssetCheckKey(key, "totals_reconcile"), limit=10)
        assert sorted(h.event.dagster_event.event_specific_data.partition for h in history) == sorted(partitions)
        assert all(h.status.value == "SUCCEEDED" for h in history)

    delivered = sorted(p.name for p in (tmp_path / "data" / "out").rglob("stmarys-daily_*.json"))
    assert delivered == [f"stmarys-daily_{p}.json" for p in periods]


REPORT_WITH_ARCHIVE = """\
id: stmarys-daily
name: St Marys daily
organization_id: org-stmarys
report_type: general_compliance
schedule: {frequency: daily, time: "02:30", timezone: Europe/Berlin}
formats: [json]
destinations: [archive]
"""



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


def _two_day_report(cli, tmp_path) -> list[str]:
    """Demo data and a daily report without destinations; its two newest ended periods."""
    cli("status", "--json")  # creates the instance at DAGSTER_HOME
    cli("demo", "seed", "--orgs", "1", "--days", "4", "--events-per-day", "20")
    report = tmp_path / "r2.yaml"
    report.write_text(REPORT_WITH_ARCHIVE.replace("destinations: [archive]\n", ""))
    cli("reports", "apply", "-f", str(report))
    return [_days_ago(3), _days_ago(2)]


def _run_batch(instance, periods: list[str]):
    """report_backfill_job over `periods` of that report, in this process."""
    from compliance_reports.orchestration import report_backfill_job as module
    from compliance_reports.orchestration.resources import default_resources

    instance.add_dynamic_partitions("daily_reports", ["stmarys-daily"])
    return module.report_backfill_job.execute_in_process(
        run_config={"ops": {"build_and_publish_periods": {"config": {
            "report_id": "stmarys-daily", "frequency": "daily", "periods": periods}}}},
        instance=instance, resources=default_resources(), raise_on_error=False)


def test_a_period_whose_export_fails_for_good_is_left_to_the_publish_sensor(cli, tmp_path, monkeypatch):
    from compliance_reports.orchestration import report_backfill_job as module

    periods = _two_day_report(cli, tmp_path)
    real_export = module.export_period

    def export(report, period, *args):
        if period == periods[0]:
            raise ValueError("renderer bug")  # not an outage: retrying would not help
        return real_export(report, period, *args)

    monkeypatch.setattr(module, "export_period", export)
    with DagsterInstance.get() as instance:
        result = _run_batch(instance, periods)
        assert result.success
        records = {r.partition_key: r for r in instance.fetch_materializations(
            AssetKey("daily_compliance_report"), limit=10).records}
        assert set(records) == {f"{p}|stmarys-daily" for p in periods}
        # The failed one is the publish sensor's to publish (through publish_report_job); the
        # other was published by the run.
        assert publish_run_request("daily", records[f"{periods[0]}|stmarys-daily"]) is not None
        assert publish_run_request("daily", records[f"{periods[1]}|stmarys-daily"]) is None
        published = instance.get_materialized_partitions(AssetKey("daily_report_publication"))
        assert set(published) == {f"{periods[1]}|stmarys-daily"}


def test_a_retried_batch_still_fails_for_the_dead_deliveries_of_the_periods_before_the_outage(
        cli, tmp_path, monkeypatch):
    """Period 1's delivery is dead, then an artifact-store outage fails period 2: the retried
    step resumes at period 2 and the run still fails, naming period 1's dead delivery."""
    from types import SimpleNamespace

    from dagster import DagsterEventType

    from compliance_reports.operations import transient_errors
    from compliance_reports.operations.transient_errors import StepRetry
    from compliance_reports.orchestration import report_backfill_job as module

    monkeypatch.setattr(transient_errors, "STEP_RETRY", StepRetry(max_retries=2, initial_s=0.1, max_delay_s=0.1))
    periods = _two_day_report(cli, tmp_path)
    real_export, real_deliver = module.export_period, module.deliver_stored
    outage = [True]

    def export(report, period, *args):
        if period == periods[1] and outage:
            outage.pop()
            raise ConnectionRefusedError("artifact store down")
        return real_export(report, period, *args)

    def deliver(report, published, *args):
        outcomes = real_deliver(report, published, *args)
        if published.period == periods[0]:
            return [SimpleNamespace(status="dead", destination="archive", recipient="vault", error="refused")]
        return outcomes

    monkeypatch.setattr(module, "export_period", export)
    monkeypatch.setattr(module, "deliver_stored", deliver)
    with DagsterInstance.get() as instance:
        result = _run_batch(instance, periods)
        assert not outage  # the outage happened, and the step was retried past it
        assert any(e.event_type == DagsterEventType.STEP_RESTARTED for e in result.all_events)
        assert not result.success
        failure = result.failure_data_for_node("build_and_publish_periods").error.message
        assert f"1 deliveries of this backfill did not go through: {periods[0]} archive/vault: refused" in failure
        published = instance.get_materialized_partitions(AssetKey("daily_report_publication"))
        assert set(published) == {f"{p}|stmarys-daily" for p in periods}


def test_batched_backfill_wait_follows_its_runs_and_gives_up_at_the_timeout(cli):
    cli("status", "--json")  # creates the instance at DAGSTER_HOME
    day = _days_ago(3)
    waited = cli("backfill", "berlin-daily", "--from", day, "--to", day, "--wait", "--timeout", "1",
                 "--poll", "0.2", "--json", expect=1)
    outcome = json.loads(waited.stdout)
    assert outcome["batch_size"] == 1 and len(outcome["run_ids"]) == 1
    state = outcome["state"]
    assert (state["status"], state["partitions"], state["finished"], state["done"]) == ("IN_PROGRESS", 1, 0, False)
    assert state["runs"] == {"QUEUED": 1}
    # --batch-size belongs to batched backfills only.
    refused = cli("backfill", "berlin-daily", "--from", day, "--to", day, "--per-period", "--batch-size", "2",
                  expect=2)
    assert "--batch-size" in refused.stderr
