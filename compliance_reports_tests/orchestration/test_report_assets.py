"""Report assets materialized on a real instance: metadata, tags, refusal of open periods."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from dagster import AssetKey, DagsterEventType, instance_for_test

from compliance_reports.config import store as config_store
from compliance_reports.config.models import ReportConfig
from compliance_reports.demo.seed import SeedOptions, seed_audit_log
from compliance_reports.orchestration.dagster_runs import report_history
from compliance_reports.orchestration.manual_run import run_report_now
from compliance_reports.scheduling import PeriodRefused


def _report(report_id: str, report_type: str, frequency: str = "daily", **schedule) -> ReportConfig:
    return ReportConfig.model_validate(
        {
            "id": report_id,
            "name": f"Report {report_id}",
            "organization_id": "org-stmarys",
            "report_type": report_type,
            "schedule": {"frequency": frequency, "timezone": "America/New_York", **schedule},
            "formats": ["json"],
        }
    )


@pytest.fixture
def seeded(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(tmp_path / "data"))
    end = datetime.now(timezone.utc).date() - timedelta(days=1)
    seed_audit_log(engine, SeedOptions(orgs=2, days=4, events_per_day=150, seed=7, end_date=end))
    config_store.apply_reports(
        engine,
        [_report("daily-general", "general_compliance"), _report("daily-hipaa", "hipaa_audit_trail")],
    )
    return engine


def _yesterday_ny() -> str:
    from zoneinfo import ZoneInfo

    return (datetime.now(ZoneInfo("America/New_York")).date() - timedelta(days=1)).isoformat()


@pytest.mark.parametrize("report_id", ["daily-general", "daily-hipaa"])
def test_materialization_records_window_counts_and_summary(seeded, sqlite_url, report_id):
    period = _yesterday_ny()
    report = config_store.get_report(seeded, report_id)
    with instance_for_test() as instance:
        outcome = run_report_now(report, period, app_db_url=sqlite_url, instance=instance)
        assert outcome["status"] == "SUCCESS", outcome["messages"]
        event = instance.get_latest_materialization_event(AssetKey("daily_compliance_report"))
        materialization = event.asset_materialization
        assert materialization.partition == f"{period}|{report_id}"
        meta = {k: v.value for k, v in materialization.metadata.items()}
        assert meta["period"] == period and meta["timezone"] == "America/New_York"
        assert meta["window_utc"].startswith(f"{period}T0")  # New York midnight is 04:00 or 05:00 UTC
        assert meta["event_count"] > 0
        assert len(meta["document_sha256"]) == 64
        assert meta["integrity_verdict"] in {"VERIFIED", "INCOMPLETE"}
        assert f"({period})" in meta["summary"]
        run = instance.get_run_by_id(outcome["run_id"])
        for key, value in {
            "report_id": report_id, "organization_id": "org-stmarys", "frequency": "daily",
            "period": period, "trigger": "manual",
        }.items():
            assert run.tags[key] == value
        checks = {
            e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data
            for e in instance.all_logs(outcome["run_id"], of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
        }
        assert set(checks) == {"window_matches_partition", "totals_reconcile", "integrity_verdict"}
        assert checks["window_matches_partition"].passed
        assert checks["totals_reconcile"].passed
        recount = checks["totals_reconcile"].metadata["recounted_total"].value
        assert recount == meta["event_count"]
        history = report_history(instance, report_id)
        assert [(h["run_id"], h["status"], h["period"], h["trigger"]) for h in history] == [
            (outcome["run_id"], "SUCCESS", period, "manual")
        ]
        assert history[0]["duration_s"] is not None


def test_run_report_now_refuses_an_unended_period_before_any_run_exists(seeded, sqlite_url):
    report = config_store.get_report(seeded, "daily-general")
    today = datetime.now(timezone.utc).date().isoformat()
    with instance_for_test() as instance:
        with pytest.raises(PeriodRefused, match="has not ended in America/New_York"):
            run_report_now(report, today, app_db_url=sqlite_url, instance=instance)
        with pytest.raises(PeriodRefused, match="is before 2025-01-01"):
            run_report_now(report, "2024-12-31", app_db_url=sqlite_url, instance=instance)
        assert instance.get_runs() == []


def test_backfill_of_an_unended_period_fails_fast_and_does_not_poison_the_schedule(seeded, sqlite_url):
    """A UI launch or backfill reaches the asset itself: one attempt, a clear reason, and the
    schedule still requests the period once its slot has passed."""
    from zoneinfo import ZoneInfo

    from dagster import build_schedule_context, materialize

    from compliance_reports.orchestration.dagster_runs import REFUSED_TAG
    from compliance_reports.orchestration.report_assets import report_assets
    from compliance_reports.orchestration.report_partitions import partition_key
    from compliance_reports.orchestration.resources import default_resources
    from compliance_reports_tests.orchestration.helpers import location_for_tests

    ny = ZoneInfo("America/New_York")
    today = datetime.now(ny).date()
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("daily_reports", ["daily-general"])
        result = materialize(
            [report_assets["daily"]],
            partition_key=partition_key(today.isoformat(), "daily-general"),
            instance=instance,
            resources=default_resources(app_db_url=sqlite_url),
            tags={"dagster/backfill": "bf-test"},
            raise_on_error=False,
        )
        assert not result.success
        events = [e.event_type for e in result.all_events]
        assert events.count(DagsterEventType.STEP_FAILURE) == 1
        assert DagsterEventType.STEP_UP_FOR_RETRY not in events
        [failure] = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
        message = failure.event_specific_data.error.message
        assert f"report daily-general: daily period {today} has not ended in America/New_York" in message
        run = instance.get_run_by_id(result.run_id)
        assert run.tags[REFUSED_TAG] == "period" and run.tags["trigger"] == "backfill"

        # The tick after tomorrow's 06:00 slot requests the refused period like any other.
        defs = location_for_tests(sqlite_url)
        schedule = defs.get_repository_def().get_schedule_def("daily_reports_schedule")
        slot = datetime.combine(today + timedelta(days=1), datetime.min.time(), ny).replace(hour=6, minute=5)
        with build_schedule_context(
            instance=instance, scheduled_execution_time=slot,
            repository_def=defs.get_repository_def(), resources=defs.resources,
        ) as context:
            requests = schedule.evaluate_tick(context).run_requests
        assert f"daily-general:{today}" in {r.run_key for r in requests}
