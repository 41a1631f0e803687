"""Failure alerts, the delivery retry sweep and retention, on a real instance with real peers."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone

import pytest
from dagster import DagsterEventType, build_run_status_sensor_context, instance_for_test
from sqlalchemy import select

from compliance_reports.config import store as config_store
from compliance_reports.config.models import ReportConfig, parse_destination
from compliance_reports.db.schema import retention_log
from compliance_reports.delivery import ledger
from compliance_reports.delivery.ledger_db import database_time
from compliance_reports.demo.seed import SeedOptions, seed_audit_log
from compliance_reports.orchestration.manual_run import run_report_now
from compliance_reports.orchestration.report_failure_alert_sensor import report_failure_alert_sensor
from compliance_reports_tests.orchestration.helpers import location_for_tests

FAST = {"max_attempts": 3, "initial_delay_s": 0.01, "multiplier": 2, "max_delay_s": 0.02}


@pytest.fixture
def setup(engine, tmp_path, monkeypatch, http_factory):
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(tmp_path / "data"))
    end = datetime.now(timezone.utc).date() - timedelta(days=1)
    seed_audit_log(engine, SeedOptions(orgs=1, days=3, events_per_day=100, seed=5, end_date=end))
    hook = http_factory()
    alerts = http_factory()
    config_store.apply_destinations(
        engine,
        [
            parse_destination({"name": "hook", "type": "webhook", "url": hook.url, "retry": FAST}),
            parse_destination({"name": "alerts", "type": "webhook", "url": alerts.url, "retry": FAST}),
        ],
    )
    config_store.apply_reports(
        engine,
        [
            ReportConfig.model_validate(
                {
                    "id": "daily-general", "name": "Daily general", "organization_id": "org-stmarys",
                    "report_type": "general_compliance",
                    "schedule": {"frequency": "daily", "timezone": "UTC"},
                    "formats": ["json", "csv"], "destinations": ["hook"], "notify_on_failure": ["alerts"],
                }
            )
        ],
    )
    return engine, hook, alerts, tmp_path


def _hook_rows(engine):
    return [r for r in ledger.list_rows(engine, report_id="daily-general") if r["destination"] == "hook"]


def _publish(defs, instance, sqlite_url, engine, period):
    report = config_store.get_report(engine, "daily-general")
    outcome = run_report_now(report, period, app_db_url=sqlite_url, instance=instance)
    assert outcome["status"] == "SUCCESS", outcome["messages"]
    from dagster import build_sensor_context

    sensor = defs.get_repository_def().get_sensor_def("publish_report_sensor")
    with build_sensor_context(instance=instance, definitions=defs, resources=defs.resources) as context:
        tick = sensor.evaluate_tick(context)
    [request] = tick.run_requests
    job = defs.get_job_def("publish_report_job")
    return job.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags,
                                  raise_on_error=False)


def test_failed_delivery_is_swept_from_stored_files_and_failure_alerted_once(setup, sqlite_url):
    engine, hook, alerts, _ = setup
    defs = location_for_tests(sqlite_url)
    period = (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()
    hook.script = [500, 500, 500]  # every in-run attempt fails
    with instance_for_test() as instance:
        result = _publish(defs, instance, sqlite_url, engine, period)
        assert not result.success
        [row] = _hook_rows(engine)
        # the in-run budget ended: the row waits for the sweep; it is not dead (give-up is 24 h away)
        assert row["status"] == "failed" and row["attempts"] == 3
        first_ids = {r.headers["webhook-id"] for r in hook.requests}
        assert first_ids == {row["id"]}
        assert alerts.requests == []  # nothing was given up: no delivery alert

        # The failure sensor for the failed publish run alerts once.
        failure_event = next(e for e in result.all_events if e.event_type == DagsterEventType.RUN_FAILURE)
        run = instance.get_run_by_id(result.run_id)
        context = build_run_status_sensor_context(
            sensor_name="report_failure_alert_sensor",
            dagster_instance=instance,
            dagster_run=run,
            dagster_event=failure_event,
            resources=defs.resources,
        ).for_run_failure()
        report_failure_alert_sensor(context)
        report_failure_alert_sensor(context)
        assert len(alerts.requests) == 1  # the run-failure alert, exactly once
        assert alerts.requests[0].json()["run_id"] == result.run_id

        # The receiver recovers; the sweep re-delivers the stored files (same sha256) once due.
        hook.script = [200]
        while ledger.get_row(engine, row["id"])["next_attempt_at"] > database_time(engine):
            time.sleep(0.05)
        sweep = defs.get_job_def("delivery_retry_job").execute_in_process(instance=instance)
        assert sweep.success
        [after] = _hook_rows(engine)
        assert after["status"] == "sent" and after["artifact_sha256"] == row["artifact_sha256"]
        assert hook.requests[-1].headers["webhook-id"] == row["id"]
        delivered_files = {f["filename"]: f["sha256"] for f in hook.requests[-1].json()["files"]}
        earlier_files = {f["filename"]: f["sha256"] for f in hook.requests[0].json()["files"]}
        assert delivered_files == earlier_files


def test_retention_removes_old_artifacts_records_them_and_keeps_the_ledger(setup, sqlite_url, monkeypatch):
    engine, hook, _, tmp_path = setup
    defs = location_for_tests(sqlite_url)
    period = (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()
    with instance_for_test() as instance:
        assert _publish(defs, instance, sqlite_url, engine, period).success
        rows_before = ledger.list_rows(engine)
        artifacts = tmp_path / "data" / "artifacts"
        files = [p for p in artifacts.rglob("*") if p.is_file()]
        assert files
        old = time.time() - 3 * 86400
        for path in files:
            os.utime(path, (old, old))
        monkeypatch.setenv("COMPLIANCE_ARTIFACT_RETENTION_DAYS", "2")
        result = defs.get_job_def("artifact_retention_job").execute_in_process(instance=instance)
        assert result.success
        assert not [p for p in artifacts.rglob("*") if p.is_file()]
        with engine.connect() as conn:
            logged = conn.execute(select(retention_log.c.kind, retention_log.c.location)).all()
        assert len([k for k, _ in logged if k == "artifact"]) == len(files)
        assert ledger.list_rows(engine) == rows_before


def test_no_secret_in_run_config_tags_event_logs_or_database(setup, sqlite_url, monkeypatch):
    """Secrets named by destinations are read at send time and never written anywhere."""
    import secrets as token

    from sqlalchemy import inspect, text

    engine, hook, _, _ = setup
    signing, manifest_key = token.token_hex(24), token.token_hex(24)
    monkeypatch.setenv("HOOK_SIGNING_SECRET", signing)
    monkeypatch.setenv("COMPLIANCE_MANIFEST_KEY", manifest_key)
    config_store.apply_destinations(
        engine,
        [parse_destination({"name": "hook", "type": "webhook", "url": hook.url, "retry": FAST,
                            "signing_secret_env": "HOOK_SIGNING_SECRET"})],
    )
    defs = location_for_tests(sqlite_url)
    period = (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()
    with instance_for_test() as instance:
        assert _publish(defs, instance, sqlite_url, engine, period).success
        assert hook.requests and "v1," in hook.requests[-1].headers["webhook-signature"]
        written = []
        for record in instance.get_run_records():
            run = record.dagster_run
            written.append(repr(run.run_config))
            written.append(repr(dict(run.tags)))
            written.extend(repr(entry) for entry in instance.all_logs(run.run_id))
        with engine.connect() as conn:
            for table in inspect(engine).get_table_names():
                written.extend(repr(row) for row in conn.execute(text(f'SELECT * FROM "{table}"')))
    blob = "\n".join(written)
    assert "HOOK_SIGNING_SECRET" in blob  # the variable's name is recorded, as designed
    assert signing not in blob and manifest_key not in blob
