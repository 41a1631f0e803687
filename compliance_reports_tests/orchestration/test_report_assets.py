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
        # Typed for the UI: Dagster's row count, the document as a path, the figures first.
        assert meta["dagster/row_count"] == meta["event_count"]
        assert type(materialization.metadata["document_location"]).__name__ == "PathMetadataValue"
        assert list(meta)[:3] == ["summary", "dagster/row_count", "event_count"]
        assert list(meta).index("integrity_verdict") < list(meta).index("window_utc")
        run = instance.get_run_by_id(outcome["run_id"])
        # Our tags, Dagster's partition tags and the job's frequency, each said once.
        assert {k: v for k, v in run.tags.items() if not k.startswith("dagster/")} == {
            "organization_id": "org-stmarys", "frequency": "daily", "trigger": "manual"}
        assert (run.tags["dagster/partition/report"], run.tags["dagster/partition/period"]) == (report_id, period)
        checks = {
            e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data
            for e in instance.all_logs(outcome["run_id"], of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
        }
        assert set(checks) == {"window_matches_partition", "totals_reconcile", "integrity_verdict",
                               "log_coverage"}
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


# ------------------------------------------------------------------ checkpoints and NO_DATA

CHECKPOINT_KEY = "asset-checkpoint-key-0123456789"


@pytest.fixture
def one_day(engine, tmp_path, monkeypatch):
    """org-x has hourly events on 2026-03-10 (UTC) and none on 2026-03-12."""
    from compliance_reports_tests.reports.dataset import load

    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(tmp_path / "data"))
    # the tests' artifact folders sit next to the data folder, inside this root
    monkeypatch.setenv("COMPLIANCE_STORAGE_ROOT", str(tmp_path))
    monkeypatch.setenv("COMPLIANCE_CHECKPOINT_KEY", CHECKPOINT_KEY)
    load(engine, [(i, "org-x", f"2026-03-{9 + i // 24:02d}T{i % 24:02d}:30:00Z", "usr-1",
                   "fhir.patient.read", "Patient", "Patient/p1", "success", "PHI", {})
                  for i in range(20, 72)])
    report = ReportConfig.model_validate({
        "id": "x-integrity", "name": "X integrity", "organization_id": "org-x",
        "report_type": "integrity_verification", "formats": ["json"],
        "schedule": {"frequency": "daily", "timezone": "UTC"}})
    config_store.apply_reports(engine, [report])
    return engine


def _materialize(instance, sqlite_url, period, artifact_dir):
    from dagster import materialize

    from compliance_reports.orchestration.report_assets import build_report_asset
    from compliance_reports.orchestration.report_partitions import partition_key
    from compliance_reports.orchestration.resources import ArtifactStoreResource, ComplianceDatabase

    instance.add_dynamic_partitions("daily_reports", ["x-integrity"])
    # Storing under a file is a request the store cannot serve (NotADirectoryError), not an
    # outage, so the production asset fails it at once without a retry.
    return materialize(
        [build_report_asset("daily")],
        partition_key=partition_key(period, "x-integrity"),
        instance=instance, raise_on_error=False,
        resources={"compliance_db": ComplianceDatabase(compliance_db_url=sqlite_url),
                   "artifact_store": ArtifactStoreResource(provider="local", base_dir=str(artifact_dir))},
    )


def _checkpoint_rows(engine) -> list:
    from sqlalchemy import select

    from compliance_reports.db.schema import integrity_checkpoints

    with engine.connect() as conn:
        return conn.execute(select(integrity_checkpoints.c.id, integrity_checkpoints.c.window_end)).all()


def _checks(instance, run_id) -> dict:
    return {
        e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data
        for e in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    }


def test_failed_run_writes_no_checkpoint(one_day, sqlite_url, tmp_path):
    not_a_folder = tmp_path / "artifacts-is-a-file"
    not_a_folder.write_text("storing under here fails")
    with instance_for_test() as instance:
        failed = _materialize(instance, sqlite_url, "2026-03-10", not_a_folder)
        assert not failed.success
        # the window verified and the build signed a checkpoint, but storing failed after it
        assert _checkpoint_rows(one_day) == []
        ok = _materialize(instance, sqlite_url, "2026-03-10", tmp_path / "artifacts")
        assert ok.success
        rows = _checkpoint_rows(one_day)
        assert [r.id for r in rows] == [1]
        meta = {k: v.value for k, v in ok.asset_materializations_for_node("daily_compliance_report")[0]
                .metadata.items()}
        assert meta["integrity_verdict"] == "VERIFIED" and meta["integrity_checkpoint_id"] == 1
        assert meta["coverage"] == "complete" and meta["coverage_findings"] == 0
        checks = _checks(instance, ok.run_id)
        assert checks["integrity_verdict"].passed and checks["log_coverage"].passed


def test_no_data_window_warns_and_writes_no_checkpoint(one_day, sqlite_url, tmp_path):
    from dagster import AssetCheckSeverity

    with instance_for_test() as instance:
        result = _materialize(instance, sqlite_url, "2026-03-12", tmp_path / "artifacts")
        assert result.success
        assert _checkpoint_rows(one_day) == []
        checks = _checks(instance, result.run_id)
        integrity = checks["integrity_verdict"]
        assert not integrity.passed and integrity.severity == AssetCheckSeverity.WARN
        assert integrity.description.startswith("NO_DATA: the organization has no audit rows")
        coverage = checks["log_coverage"]
        assert not coverage.passed and coverage.severity == AssetCheckSeverity.WARN
        assert coverage.description.startswith("No audit events in the window")
        assert coverage.metadata["status"].value == "no_data"
        assert coverage.metadata["hours_without_events"].value == 24
        meta = {k: v.value for k, v in result.asset_materializations_for_node(
            "daily_compliance_report")[0].metadata.items()}
        assert meta["integrity_verdict"] == "NO_DATA" and "integrity_checkpoint_id" not in meta
        assert "Coverage: **no_data**" in meta["summary"]


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
