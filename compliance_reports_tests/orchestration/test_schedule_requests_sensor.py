"""The schedule-requests sensor on a real instance with a queued-run coordinator."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from dagster import DagsterRunStatus, DailyPartitionsDefinition, build_sensor_context
from sqlalchemy import insert

from compliance_reports.config import store as config_store
from compliance_reports.config.models import ReportConfig
from compliance_reports.db.schema import schedule_requests
from compliance_reports.orchestration import report_partitions
from compliance_reports.orchestration.report_partitions import report_id_partitions
from compliance_reports.periods import latest_ended_period
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
        own = {k for k in run_request.tags if not k.startswith("dagster/")}
        assert own == {"organization_id", "trigger"} and run_request.tags["trigger"] == "request"
        assert run_request.job_name == "monthly_reports_job"

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


def _row(engine, report_id: str, action: str, period: str | None = None) -> int:
    """A request as any other system writes it: straight into the table, nothing checked."""
    with engine.begin() as conn:
        result = conn.execute(
            insert(schedule_requests).values(
                report_id=report_id, action=action, period=period, requested_by="other-system",
                requested_at=datetime.now(timezone.utc), status="pending",
            )
        )
    return int(result.inserted_primary_key[0])


def test_a_batch_of_valid_and_invalid_requests_is_judged_request_by_request(configured, sqlite_url):
    weekly = ReportConfig.model_validate(
        {
            "id": "r-weekly", "name": "r-weekly", "organization_id": "org-1",
            "report_type": "general_compliance", "formats": ["json"],
            "schedule": {"frequency": "weekly", "day_of_week": "monday", "timezone": "UTC"},
        }
    )
    config_store.apply_reports(configured, [weekly])
    defs = location_for_tests(sqlite_url)
    now = datetime.now(timezone.utc)
    berlin_today = datetime.now(ZoneInfo("Europe/Berlin")).date().isoformat()
    last_month = latest_ended_period(now, "monthly", "Europe/Berlin")
    with queued_instance() as instance:
        ids = {
            "unended": _row(configured, "r-daily", "run_now", berlin_today),
            "valid_run_now": _row(configured, "r-monthly", "run_now", last_month),
            "before_first": _row(configured, "r-daily", "run_now", "2024-12-31"),
            "not_a_monday": _row(configured, "r-weekly", "run_now", "2026-11-24"),
            "unknown_unschedule": _row(configured, "r-ghost", "unschedule"),
            "unknown_schedule": _row(configured, "r-ghost", "schedule"),
            "unknown_run_now": _row(configured, "r-ghost", "run_now"),
            "valid_unschedule": _row(configured, "r-weekly", "unschedule"),
            "valid_latest": _row(configured, "r-daily", "run_now"),
        }
        result = _evaluate(defs, instance)

        assert sorted((r.run_key, str(r.partition_key)) for r in result.run_requests) == sorted([
            (f"request:{ids['valid_run_now']}", f"{last_month}|r-monthly"),
            (f"request:{ids['valid_latest']}", f"{latest_ended_period(now, 'daily', 'Europe/Berlin')}|r-daily"),
        ])
        rows = _requests(configured)
        reasons = {name: json.loads(rows[i]["result"]).get("error") for name, i in ids.items()}
        statuses = {name: rows[i]["status"] for name, i in ids.items()}
        assert statuses == {
            "unended": "failed", "valid_run_now": "done", "before_first": "failed",
            "not_a_monday": "failed", "unknown_unschedule": "failed", "unknown_schedule": "failed",
            "unknown_run_now": "failed", "valid_unschedule": "done", "valid_latest": "done",
        }
        assert f"daily period {berlin_today} has not ended in Europe/Berlin" in reasons["unended"]
        assert "is before 2025-01-01, the first period of daily_compliance_report" in reasons["before_first"]
        assert "is a Tuesday; weekly periods start on Monday" in reasons["not_a_monday"]
        for name in ("unknown_unschedule", "unknown_schedule", "unknown_run_now"):
            assert reasons[name] == "report 'r-ghost' does not exist"
        assert config_store.get_report(configured, "r-weekly").enabled is False
        assert result.cursor == str(ids["valid_latest"])


def test_unschedule_after_delete_still_cancels_the_queued_runs(configured, sqlite_url):
    defs = location_for_tests(sqlite_url)
    with queued_instance() as instance:
        # What the daemon did with an earlier tick's partition request for the configured report.
        instance.add_dynamic_partitions(report_id_partitions["daily"].name, ["r-daily"])
        queued = add_queued_run(instance, "r-daily", "2026-11-27", "daily")
        config_store.delete_report(configured, "r-daily", actor="test")
        _evaluate(defs, instance)
        [row] = config_store.list_requests(configured)
        assert row["status"] == "done"
        assert json.loads(row["result"]) == {
            "cancelled_runs": [queued], "configuration": "deleted", "disabled": False,
        }
        assert instance.get_run_by_id(queued).status == DagsterRunStatus.CANCELED


def test_a_period_outside_the_assets_partitions_fails_only_its_own_request(configured, sqlite_url, monkeypatch):
    # Should the asset's partitions ever start later than the request check's first period, the request
    # is failed on its own instead of making Dagster reject the whole tick.
    monkeypatch.setitem(
        report_partitions.period_partitions, "daily", DailyPartitionsDefinition(start_date="2025-06-01", end_offset=1)
    )
    defs = location_for_tests(sqlite_url)
    with queued_instance() as instance:
        bad = _row(configured, "r-daily", "run_now", "2025-05-31")
        good = _row(configured, "r-monthly", "run_now", "2026-10-01")
        result = _evaluate(defs, instance)
        assert [r.run_key for r in result.run_requests] == [f"request:{good}"]
        row = _requests(configured)[bad]
        assert row["status"] == "failed"
        assert json.loads(row["result"])["error"] == "period: 2025-05-31 is not a partition of daily_compliance_report"
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
