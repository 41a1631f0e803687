"""`status`, doctor's recent failures and `--version` against a real DAGSTER_HOME instance."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from importlib.metadata import version

from dagster import DagsterInstance, DagsterRunStatus

from compliance_reports.config.models import WebhookDestination
from compliance_reports.db.engine import make_engine
from compliance_reports.delivery import ledger
from compliance_reports.demo.seed import SeedOptions, seed_audit_log
from compliance_reports_tests.delivery.conftest import fast_retry, make_publication
from compliance_reports_tests.orchestration.helpers import add_queued_run


def test_version(cli):
    assert cli("--version").output.strip() == f"compliance-reports {version('compliance_reports')}"


def test_status_follows_runs_and_deliveries(cli, tmp_path):
    before = json.loads(cli("status", "--json").output)
    assert [(s["report_id"], s["outcome"], s["last_period"]) for s in before] == [("berlin-daily", "never", None)]
    slot = datetime.fromisoformat(before[0]["next_slot_utc"])
    assert slot > datetime.now(timezone.utc)
    assert before[0]["next_slot_local"].endswith(("+01:00", "+02:00"))  # Europe/Berlin
    assert datetime.fromisoformat(before[0]["next_slot_local"]) == slot

    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'compliance.db'}")
    end = datetime.now(timezone.utc).date() - timedelta(days=1)
    seed_audit_log(engine, SeedOptions(orgs=2, days=3, events_per_day=50, seed=5, end_date=end))
    outcome = json.loads(cli("run", "berlin-daily", "--json").stdout)
    assert outcome["status"] == "SUCCESS"
    with DagsterInstance.get() as instance:
        from compliance_reports.orchestration.dagster_runs import report_asset_key

        record = instance.fetch_materializations(report_asset_key("daily"), limit=1).records[0]
        verdict = record.asset_materialization.metadata["integrity_verdict"].value
    after = json.loads(cli("status", "--json").output)[0]
    assert (after["last_period"], after["last_run_period"], after["outcome"], after["integrity"]) == (
        outcome["period"], outcome["period"], "success", verdict)
    assert after["deliveries"] == {} and after["last_failure"] is None
    cli("status", "--strict")

    # One dead and one failed delivery an hour ago, then a failed report run now.
    hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    dest = WebhookDestination(type="webhook", name="hook", url="https://example.test/hook", retry=fast_retry())
    publication = make_publication(tmp_path / "pub", report_id="berlin-daily", period=outcome["period"])
    dead, failed = ledger.ensure_rows(engine, publication, dest, ["r-dead", "r-failed"], 3, now=hour_ago)
    for row_id in (dead, failed):
        ledger.claim(engine, row_id, 60, hour_ago)
    ledger.mark_failed(engine, dead, "HTTP 400 Bad Request", hour_ago, dest.retry, False, None)
    ledger.mark_failed(engine, failed, "HTTP 503", hour_ago, dest.retry, True, 3600)
    with_deliveries = json.loads(cli("status", "--json").output)[0]
    assert with_deliveries["deliveries"] == {"dead": 1, "failed": 1}
    assert "HTTP 400 Bad Request" in with_deliveries["last_failure"]
    cli("status", "--strict", expect=1)

    later = (datetime.fromisoformat(outcome["period"]) + timedelta(days=1)).date().isoformat()
    with DagsterInstance.get() as instance:
        run_id = add_queued_run(instance, "berlin-daily", later, "daily")
        instance.report_run_failed(instance.get_run_by_id(run_id), message="audit database unreachable")
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE
    failing = json.loads(cli("status", "--json").output)[0]
    assert (failing["last_period"], failing["last_run_period"], failing["outcome"]) == (
        outcome["period"], later, "failure")
    assert failing["last_failure"].startswith(f"report run {run_id[:8]} ({later})")
    assert "audit database unreachable" in failing["last_failure"]
    table = cli("status").output
    assert "LAST_FAILURE" in table and f"failure ({later})" in table

    doctor = cli("doctor", "--no-daemon", expect=1)
    assert "1 failed run(s) in the last 7 days" in doctor.output and run_id[:8] in doctor.output
    assert "FAIL  recent deliveries: dead deliveries in the last 7 days (hook: 1)" in doctor.output
    assert "warn  recent deliveries: failed deliveries awaiting retry (hook: 1)" in doctor.output

    history = json.loads(cli("history", "berlin-daily", "--json").output)
    assert [(h["job"], h["status"], h["period"], h["error"]) for h in history] == [
        ("daily report", "FAILURE", later, "audit database unreachable"),
        ("daily report", "SUCCESS", outcome["period"], None),
    ]
    # `run` goes through the same named job as the schedules, never an anonymous asset job.
    assert [h["dagster_job"] for h in history] == ["daily_reports_job", "daily_reports_job"]
    table = cli("history", "berlin-daily").output
    assert "daily report" in table and "audit database unreachable" in table and "__ASSET_JOB" not in table


def test_request_commands_print_json(cli):
    disabled = json.loads(cli("reports", "disable", "berlin-daily", "--json").output)
    assert disabled["report_id"] == "berlin-daily" and disabled["enabled"] is False
    assert isinstance(disabled["version"], int)
    enabled = json.loads(cli("reports", "enable", "berlin-daily", "--json").output)
    assert enabled["enabled"] is True and isinstance(enabled["request_id"], int)
    unscheduled = json.loads(cli("reports", "unschedule", "berlin-daily", "--json").output)
    assert unscheduled["action"] == "unschedule" and unscheduled["request_id"] > enabled["request_id"]
    run_now = json.loads(cli("reports", "run-now", "berlin-daily", "--json").output)
    assert (run_now["action"], run_now["period"]) == ("run_now", None)
    assert run_now["request_id"] > unscheduled["request_id"]
    cli("reports", "enable", "nope", "--json", expect=2)
    future = (datetime.now(timezone.utc).date() + timedelta(days=3)).isoformat()
    refused = cli("reports", "run-now", "berlin-daily", "--period", future, "--json", expect=2)
    assert "--period" in refused.output
