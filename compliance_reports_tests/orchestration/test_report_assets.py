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


def test_period_that_has_not_ended_fails_with_a_clear_message(seeded, sqlite_url):
    report = config_store.get_report(seeded, "daily-general")
    today = datetime.now(timezone.utc).date().isoformat()
    with instance_for_test() as instance:
        outcome = run_report_now(report, today, app_db_url=sqlite_url, instance=instance)
        assert outcome["status"] == "FAILURE"
        assert any("has not ended in America/New_York" in m for m in outcome["messages"])
        assert instance.get_latest_materialization_event(AssetKey("daily_compliance_report")) is None


def test_redaction_without_the_checkpoint_key_fails_once_without_retries(seeded, sqlite_url, monkeypatch):
    redacting = _report("daily-redacted", "custom").model_copy(
        update={"export": _report("x", "custom").export.model_copy(update={"redact_identifiers": True})})
    config_store.apply_reports(seeded, [redacting], environ={"COMPLIANCE_CHECKPOINT_KEY": "key-at-apply"})
    monkeypatch.delenv("COMPLIANCE_CHECKPOINT_KEY", raising=False)  # gone where the run happens
    report = config_store.get_report(seeded, "daily-redacted")
    with instance_for_test() as instance:
        outcome = run_report_now(report, _yesterday_ny(), app_db_url=sqlite_url, instance=instance)
        assert outcome["status"] == "FAILURE"
        assert any("COMPLIANCE_CHECKPOINT_KEY" in m for m in outcome["messages"]), outcome["messages"]
        assert not instance.all_logs(outcome["run_id"], of_type=DagsterEventType.STEP_UP_FOR_RETRY)
        assert instance.get_latest_materialization_event(AssetKey("daily_compliance_report")) is None
