"""The failure-alert sensor on a real instance: records alerts, never loses one, never blocks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from dagster import build_sensor_context

from compliance_reports.config import store as config_store
from compliance_reports.config.models import ReportConfig, parse_destination
from compliance_reports.delivery import ledger
from compliance_reports.orchestration.report_failure_alert_sensor import parse_cursor
from compliance_reports_tests.delivery.conftest import LOCAL_RECEIVER
from compliance_reports_tests.orchestration.helpers import add_queued_run, location_for_tests, queued_instance
from compliance_reports_tests.peers import free_port

FAST = {"max_attempts": 3, "initial_delay_s": 0.01, "multiplier": 2, "max_delay_s": 0.02}


@pytest.fixture
def configured(engine, http_factory):
    alerts = http_factory()
    config_store.apply_destinations(engine, [parse_destination(
        {"name": "oncall", "type": "webhook", "url": alerts.url, "retry": FAST, **LOCAL_RECEIVER})])
    config_store.apply_reports(engine, [ReportConfig.model_validate({
        "id": "utc-daily", "name": "UTC daily", "organization_id": "org-1",
        "report_type": "general_compliance",
        "schedule": {"frequency": "daily", "time": "00:00", "timezone": "UTC", "max_catch_up": 3},
        "formats": ["json"], "notify_on_failure": ["oncall"],
    })])
    return engine, alerts


def _tick(defs, instance, cursor):
    sensor = defs.get_repository_def().get_sensor_def("report_failure_alert_sensor")
    with build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=defs.resources) as context:
        return sensor.evaluate_tick(context)


def _failed_run(instance, period: str, **tags) -> str:
    run_id = add_queued_run(instance, "utc-daily", period, "daily")
    if tags:
        instance.add_run_tags(run_id, tags)
    instance.report_run_failed(instance.get_run_by_id(run_id))
    return run_id


def _alert_rows(engine):
    return [r for r in ledger.list_rows(engine) if r["recipient"].startswith("alert:")]


def test_database_down_keeps_the_cursor_and_the_next_tick_records_the_alert(configured, sqlite_url, monkeypatch):
    engine, alerts = configured
    monkeypatch.setenv("COMPLIANCE_RETRY_MAX", "0")  # the first failure is the last: gave_up
    good = location_for_tests(sqlite_url)
    down = location_for_tests(f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/gone")
    period = (datetime.now(timezone.utc) - timedelta(days=2)).date().isoformat()
    with queued_instance() as instance:
        start = _tick(good, instance, None)  # first tick: starts after the latest failure
        assert not start.run_requests
        run_id = _failed_run(instance, period)

        with pytest.raises(Exception, match="OperationalError|could not connect|Connection refused"):
            _tick(down, instance, start.cursor)  # the tick fails: its cursor is not stored
        assert _alert_rows(engine) == []

        recorded = _tick(good, instance, start.cursor)
        assert parse_cursor(recorded.cursor) > parse_cursor(start.cursor)
        [request] = recorded.run_requests
        [row] = _alert_rows(engine)
        assert row["status"] == "pending" and row["artifact_sha256"] == "failure:gave_up"
        assert alerts.requests == []  # recorded only: the tick never waits for a channel

        result = good.get_job_def("delivery_retry_job").execute_in_process(instance=instance, tags=request.tags)
        assert result.success
        [received] = alerts.requests
        payload = received.json()
        assert (payload["kind"], payload["run_id"], payload["period"]) == ("gave_up", run_id, period)
        assert "left failed" in payload["error_summary"]

        # The same failure seen again (cursor lost): no second alert.
        again = _tick(good, instance, start.cursor)
        good.get_job_def("delivery_retry_job").execute_in_process(instance=instance)
        assert len(alerts.requests) == 1 and len(_alert_rows(engine)) == 1
        assert again.run_requests  # harmless: the job finds nothing due


def test_failures_that_will_be_retried_alert_nobody(configured, sqlite_url):
    engine, alerts = configured
    defs = location_for_tests(sqlite_url)
    period = (datetime.now(timezone.utc) - timedelta(days=2)).date().isoformat()
    with queued_instance() as instance:
        start = _tick(defs, instance, None)
        _failed_run(instance, period)  # the schedule retries it after the cool-down
        crashed = _failed_run(instance, (datetime.now(timezone.utc) - timedelta(days=3)).date().isoformat(),
                              **{"dagster/will_retry": "true"})  # Dagster re-executes it
        result = _tick(defs, instance, start.cursor)
        assert not result.run_requests and _alert_rows(engine) == []
        assert crashed and alerts.requests == []


def test_a_failure_nothing_retries_is_alerted(configured, sqlite_url):
    engine, alerts = configured
    defs = location_for_tests(sqlite_url)
    with queued_instance() as instance:
        start = _tick(defs, instance, None)
        _failed_run(instance, "2026-01-05")  # a backfilled period far outside the look-back
        result = _tick(defs, instance, start.cursor)
        assert result.run_requests
        [row] = _alert_rows(engine)
        assert row["artifact_sha256"] == "failure:run"


def test_cursor_of_the_former_run_failure_sensor_is_understood():
    assert parse_cursor('{"record_id": 42, "update_timestamp": null, "record_timestamp": null}') == 42
    assert parse_cursor("17") == 17
    assert parse_cursor(None) is None and parse_cursor("garbage") is None


def test_a_failed_publish_after_a_failed_report_run_is_a_new_alert(configured, sqlite_url):
    from dagster import DagsterRun, DagsterRunStatus
    from dagster._core.utils import make_new_run_id

    engine, alerts = configured
    defs = location_for_tests(sqlite_url)
    with queued_instance() as instance:
        start = _tick(defs, instance, None)
        _failed_run(instance, "2026-01-05")  # outside the look-back: a run alert
        publish = DagsterRun(job_name="publish_report_job", run_id=make_new_run_id(), status=DagsterRunStatus.STARTED,
                             tags={"report_id": "utc-daily", "period": "2026-01-05", "frequency": "daily"})
        instance.add_run(publish)
        instance.report_run_failed(publish)
        _tick(defs, instance, start.cursor)
        rows = _alert_rows(engine)
        assert len(rows) == 2 and {r["artifact_sha256"].split(":")[1] for r in rows} == {"run"}
        assert len({r["artifact_sha256"] for r in rows}) == 2
