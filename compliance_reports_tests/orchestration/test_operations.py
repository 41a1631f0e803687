"""Failure alerts, the delivery retry sweep and retention, on a real instance with real peers."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone

import pytest
from dagster import build_sensor_context, instance_for_test
from sqlalchemy import select, update

from compliance_reports.config import store as config_store
from compliance_reports.config.models import ReportConfig, parse_destination
from compliance_reports.db.schema import retention_log, stored_files
from compliance_reports.delivery import ledger
from compliance_reports.delivery.ledger_db import database_time
from compliance_reports.demo.seed import SeedOptions, seed_audit_log
from compliance_reports.orchestration.manual_run import run_report_now
from compliance_reports_tests.delivery.conftest import LOCAL_RECEIVER
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
            parse_destination({"name": "hook", "type": "webhook", "url": hook.url, "retry": FAST, **LOCAL_RECEIVER}),
            parse_destination({"name": "alerts", "type": "webhook", "url": alerts.url, "retry": FAST, **LOCAL_RECEIVER}),
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

    sensor = defs.get_repository_def().get_sensor_def("publish_report_sensor")
    with build_sensor_context(instance=instance, definitions=defs, resources=defs.resources) as context:
        tick = sensor.evaluate_tick(context)
    [request] = tick.run_requests
    job = defs.get_job_def("publish_report_job")
    return job.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags,
                                  raise_on_error=False)


def test_failed_delivery_is_handed_to_the_sweep_and_delivered_from_stored_files_without_alerts(setup, sqlite_url):
    engine, hook, alerts, _ = setup
    defs = location_for_tests(sqlite_url)
    period = (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()
    hook.script = [500, 500, 500]  # every in-run attempt fails
    with instance_for_test() as instance:
        result = _publish(defs, instance, sqlite_url, engine, period)
        # handing rows to the sweep is not a run failure: nothing is lost, nobody is alerted yet
        assert result.success
        [row] = _hook_rows(engine)
        # the in-run budget ended: the row waits for the sweep; it is not dead (give-up is 24 h away)
        assert row["status"] == "failed" and row["attempts"] == 3
        first_ids = {r.headers["webhook-id"] for r in hook.requests}
        assert first_ids == {row["id"]}

        # The failure sensor has no failed run to react to: a failure that recovers alerts nobody.
        sensor = defs.get_repository_def().get_sensor_def("report_failure_alert_sensor")
        for _ in range(2):
            with build_sensor_context(instance=instance, cursor="0", definitions=defs,
                                      resources=defs.resources) as context:
                tick = sensor.evaluate_tick(context)
            assert not tick.run_requests
        assert alerts.requests == []

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


def test_retention_removes_only_recorded_old_files_records_them_and_keeps_the_ledger(setup, sqlite_url, monkeypatch):
    engine, hook, _, tmp_path = setup
    data = tmp_path / "data"
    config_store.apply_destinations(engine, [parse_destination(
        {"name": "archive", "type": "storage", "provider": "local", "base_path": "archive", "retention_days": 2})])
    report = config_store.get_report(engine, "daily-general")
    config_store.apply_reports(engine, [report.model_copy(update={"destinations": ["hook", "archive"]})])
    defs = location_for_tests(sqlite_url)
    period = (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()
    with instance_for_test() as instance:
        assert _publish(defs, instance, sqlite_url, engine, period).success
        rows_before = ledger.list_rows(engine)
        ours = [p for p in (data / "artifacts").rglob("*") if p.is_file()]
        delivered = [p for p in (data / "archive").rglob("*") if p.is_file()]
        assert ours and delivered
        # Files the project did not write, next to the ones it did: they must survive.
        run_folder = ours[0].parent
        foreign = [run_folder / "id_rsa", data / "artifacts" / "org-stmarys" / "notes.py",
                   delivered[0].parent / "id_ed25519", data / "archive" / "source.c"]
        for path in foreign:
            path.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot ours\n")
        old = time.time() - 30 * 86400
        for path in ours + delivered + foreign:
            os.utime(path, (old, old))
        with engine.begin() as conn:  # the index says when each file was written
            conn.execute(update(stored_files).values(stored_at=datetime.now(timezone.utc) - timedelta(days=3)))
        monkeypatch.setenv("COMPLIANCE_ARTIFACT_RETENTION_DAYS", "2")
        result = defs.get_job_def("artifact_retention_job").execute_in_process(instance=instance)
        assert result.success
        assert not any(p.exists() for p in ours + delivered)
        assert all(p.read_text().endswith("not ours\n") for p in foreign)
        with engine.connect() as conn:
            logged = conn.execute(select(retention_log.c.kind, retention_log.c.location)).all()
            left = conn.execute(select(stored_files)).all()
        assert sorted(loc for k, loc in logged if k == "artifact") == sorted(str(p) for p in ours)
        assert sorted(loc for k, loc in logged if k == "destination_object") == sorted(
            f"archive:{p}" for p in delivered)
        assert left == []
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
        [parse_destination({"name": "hook", "type": "webhook", "url": hook.url, "retry": FAST, **LOCAL_RECEIVER,
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
