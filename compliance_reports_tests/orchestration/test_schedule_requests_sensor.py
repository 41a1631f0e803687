"""The schedule-requests sensor on a real instance with a queued-run coordinator."""

from __future__ import annotations

import json

import pytest
from dagster import DagsterRunStatus, build_sensor_context

from compliance_reports.config import store as config_store
from compliance_reports.config.models import ReportConfig
from compliance_reports.orchestration.report_partitions import report_id_partitions
from compliance_reports_tests.orchestration.helpers import (
    add_queued_run,
    location_for_tests,
    queued_instance,
)


@pytest.fixture
def configured(engine):
    reports = [
        ReportConfig.model_validate(
            {
                "id": rid,
                "name": rid,
                "organization_id": "org-1",
                "report_type": "general_compliance",
                "schedule": {"frequency": freq, "timezone": "Europe/Berlin", **extra},
                "formats": ["json"],
            }
        )
        for rid, freq, extra in (
            ("r-daily", "daily", {}),
            ("r-monthly", "monthly", {"day_of_month": "last"}),
        )
    ]
    config_store.apply_reports(engine, reports)
    return engine


def _evaluate(defs, instance, cursor=None):
    sensor = defs.get_repository_def().get_sensor_def("schedule_requests_sensor")
    with build_sensor_context(
        instance=instance, instance_ref=instance.get_ref(), definitions=defs, cursor=cursor,
        resources=defs.resources,
    ) as context:
        return sensor.evaluate_tick(context)


def _requests(engine):
    return {r["id"]: r for r in config_store.list_requests(engine)}


def test_reconciles_partitions_of_enabled_reports_without_a_request(configured, sqlite_url):
    defs = location_for_tests(sqlite_url)
    with queued_instance() as instance:
        result = _evaluate(defs, instance)
        added = {
            (req.partitions_def_name, tuple(req.partition_keys))
            for req in result.dynamic_partitions_requests
        }
        assert added == {("daily_reports", ("r-daily",)), ("monthly_reports", ("r-monthly",))}


def test_unschedule_cancels_queued_run_and_reprocessing_is_a_no_op(configured, sqlite_url):
    defs = location_for_tests(sqlite_url)
    with queued_instance() as instance:
        queued = add_queued_run(instance, "r-daily", "2026-11-27", "daily")
        other = add_queued_run(instance, "r-monthly", "2026-10-01", "monthly")
        request_id = config_store.request(configured, "r-daily", "unschedule", actor="test")

        result = _evaluate(defs, instance)
        assert instance.get_run_by_id(queued).status == DagsterRunStatus.CANCELED
        assert instance.get_run_by_id(other).status == DagsterRunStatus.QUEUED
        assert config_store.get_report(configured, "r-daily").enabled is False
        row = _requests(configured)[request_id]
        assert row["status"] == "done"
        assert json.loads(row["result"]) == {"cancelled_runs": [queued], "disabled": True}
        assert result.cursor == str(request_id)

        version = config_store.get_report(configured, "r-daily").version
        again = _evaluate(defs, instance)  # cursor lost: starts from the beginning again
        assert not again.run_requests
        assert config_store.get_report(configured, "r-daily").version == version
        assert _requests(configured)[request_id]["result"] == row["result"]


def test_schedule_reenables_and_registers_partition(configured, sqlite_url):
    defs = location_for_tests(sqlite_url)
    config_store.set_enabled(configured, "r-daily", False)
    with queued_instance() as instance:
        config_store.request(configured, "r-daily", "schedule", actor="test")
        result = _evaluate(defs, instance)
        assert config_store.get_report(configured, "r-daily").enabled is True
        names = {req.partitions_def_name: set(req.partition_keys) for req in result.dynamic_partitions_requests}
        assert "r-daily" in names[report_id_partitions["daily"].name]


def test_run_now_requests_a_run_with_request_trigger(configured, sqlite_url):
    defs = location_for_tests(sqlite_url)
    with queued_instance() as instance:
        request_id = config_store.request(configured, "r-monthly", "run_now", period="2026-10-01", actor="t")
        result = _evaluate(defs, instance)
        [run_request] = result.run_requests
        assert run_request.run_key == f"request:{request_id}"
        assert str(run_request.partition_key) == "2026-10-01|r-monthly"
        assert run_request.tags["trigger"] == "request" and run_request.tags["period"] == "2026-10-01"

        bad = config_store.request(configured, "r-monthly", "run_now", period="2026-10-02", actor="t")
        result = _evaluate(defs, instance, cursor=str(request_id))
        assert not result.run_requests
        row = _requests(configured)[bad]
        assert row["status"] == "failed" and "period" in row["result"]


def test_late_scheduled_run_of_a_disabled_report_is_cancelled_but_not_a_backfill(configured, sqlite_url):
    defs = location_for_tests(sqlite_url)
    config_store.set_enabled(configured, "r-daily", False)
    with queued_instance() as instance:
        late = add_queued_run(instance, "r-daily", "2026-11-27", "daily", trigger="schedule")
        backfill = add_queued_run(instance, "r-daily", "2026-11-20", "daily", trigger="backfill")
        _evaluate(defs, instance)
        assert instance.get_run_by_id(late).status == DagsterRunStatus.CANCELED
        assert instance.get_run_by_id(backfill).status == DagsterRunStatus.QUEUED


def test_run_now_is_coalesced_with_a_queued_run_and_within_a_tick(configured, sqlite_url):
    defs = location_for_tests(sqlite_url)
    with queued_instance() as instance:
        first = config_store.request(configured, "r-monthly", "run_now", period="2026-10-01", actor="t")
        twice = config_store.request(configured, "r-monthly", "run_now", period="2026-10-01", actor="t")
        other = config_store.request(configured, "r-monthly", "run_now", period="2026-09-01", actor="t")
        result = _evaluate(defs, instance)
        assert sorted(r.run_key for r in result.run_requests) == [f"request:{first}", f"request:{other}"]
        assert json.loads(_requests(configured)[twice]["result"]) == {
            "requested_period": "2026-10-01", "coalesced_with": f"request:{first}"}

        queued = add_queued_run(instance, "r-daily", "2026-11-27", "daily", trigger="schedule")
        again = config_store.request(configured, "r-daily", "run_now", period="2026-11-27", actor="t")
        result = _evaluate(defs, instance, cursor=str(other))
        assert not result.run_requests
        row = _requests(configured)[again]
        assert row["status"] == "done" and json.loads(row["result"])["coalesced_with"] == queued

        instance.report_run_canceled(instance.get_run_by_id(queued))
        after = config_store.request(configured, "r-daily", "run_now", period="2026-11-27", actor="t")
        result = _evaluate(defs, instance, cursor=str(again))
        assert [r.run_key for r in result.run_requests] == [f"request:{after}"]
