"""Publish: one run per materialization, files exported once, stored, verified and delivered."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from dagster import AssetKey, build_sensor_context, instance_for_test

from compliance_reports.config import store as config_store
from compliance_reports.config.models import ReportConfig, parse_destination
from compliance_reports.delivery import ledger
from compliance_reports.demo.seed import SeedOptions, seed_audit_log
from compliance_reports.artifacts.manifest import verify_folder
from compliance_reports.orchestration.manual_run import run_report_now
from compliance_reports_tests.orchestration.helpers import location_for_tests


@pytest.fixture
def published_setup(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COMPLIANCE_MANIFEST_KEY", "k" * 32)
    end = datetime.now(timezone.utc).date() - timedelta(days=1)
    seed_audit_log(engine, SeedOptions(orgs=1, days=4, events_per_day=200, seed=3, end_date=end))
    archive = tmp_path / "data" / "archive"  # under the storage root (the data folder)
    config_store.apply_destinations(
        engine,
        [parse_destination({"name": "archive", "type": "storage", "provider": "local", "base_path": "archive"})],
    )
    report = ReportConfig.model_validate(
        {
            "id": "daily-hipaa",
            "name": "Daily HIPAA",
            "organization_id": "org-stmarys",
            "report_type": "hipaa_audit_trail",
            "schedule": {"frequency": "daily", "timezone": "UTC"},
            "formats": ["pdf", "csv", "json", "xml", "parquet"],
            "destinations": ["archive"],
        }
    )
    config_store.apply_reports(engine, [report])
    return engine, archive, tmp_path / "data" / "artifacts"


def _sensor_tick(defs, instance, cursor=None):
    sensor = defs.get_repository_def().get_sensor_def("publish_report_sensor")
    with build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
    ) as context:
        return sensor.evaluate_tick(context)


def test_one_publish_run_per_materialization_and_files_delivered_once(published_setup, sqlite_url):
    engine, archive, artifacts = published_setup
    defs = location_for_tests(sqlite_url)
    period = (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()
    report = config_store.get_report(engine, "daily-hipaa")
    with instance_for_test() as instance:
        outcome = run_report_now(report, period, app_db_url=sqlite_url, instance=instance)
        assert outcome["status"] == "SUCCESS", outcome["messages"]

        first = _sensor_tick(defs, instance)
        assert len(first.run_requests) == 1
        request = first.run_requests[0]
        assert request.run_key.startswith("publish:")
        assert request.tags["report_id"] == "daily-hipaa" and request.tags["period"] == period
        second = _sensor_tick(defs, instance, cursor=first.cursor)
        assert not second.run_requests  # the same materialization is never published twice

        job = defs.get_job_def("publish_report_job")
        result = job.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)
        assert result.success
        stored = result.output_for_node("export_report")
        names = sorted(f["filename"] for f in stored["files"])
        assert names == sorted(
            f"daily-hipaa_{period}.{ext}" for ext in ("pdf", "csv", "json", "xml", "parquet")
        )
        run_folder = artifacts / "org-stmarys" / "daily-hipaa" / period / outcome["run_id"]
        report_doc = json.loads((run_folder / "report.json").read_bytes())
        assert report_doc["header"]["period"] == period
        # The manifest covers the whole stored set: five exports, the document and the events.
        verification = verify_folder(run_folder, b"k" * 32)
        assert verification.ok and verification.signature == "valid", verification.problems
        assert sorted(verification.checked) == sorted([*names, "events.parquet", "report.json"])
        assert sorted(p.name for p in run_folder.iterdir()) == sorted(
            [*names, "events.parquet", "report.json", "manifest.json"]
        )

        # Delivery sends the exports and the manifest, never the stored document or events.
        delivered_paths = [p for p in archive.rglob("*") if p.is_file()]
        delivered = sorted(p.name for p in delivered_paths)
        assert delivered == sorted([*names, "manifest.json"])
        copy = verify_folder(delivered_paths[0].parent, b"k" * 32, exports_only=True)
        assert copy.ok and copy.files_checked == 5, copy.problems
        assert sorted(copy.not_checked) == [
            "events.parquet (sources: kept in the artifact store; --exports-only)",
            "report.json (sources: kept in the artifact store; --exports-only)",
        ]
        rows = ledger.list_rows(engine, report_id="daily-hipaa")
        assert [r["status"] for r in rows] == ["sent"]

        # A second publish of the same materialization reuses the stored files and sends nothing.
        again = job.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)
        assert again.success
        assert again.output_for_node("export_report")["reused"] is True
        assert again.output_for_node("export_report")["manifest_sha256"] == stored["manifest_sha256"]
        assert [r["attempts"] for r in ledger.list_rows(engine, report_id="daily-hipaa")] == [1]

        # The publication is its own asset's event, leaving the report's panel to the report.
        assert not instance.fetch_observations(AssetKey("daily_compliance_report"), limit=1).records
        publications = instance.fetch_materializations(AssetKey("daily_report_publication"), limit=10).records
        assert [r.partition_key for r in publications] == [f"{period}|daily-hipaa"] * 2
        meta = publications[0].asset_materialization.metadata
        files = meta["files"]
        assert sorted(r.data["file"] for r in files.records) == names
        assert {r.data["sha256"] for r in files.records} == {f["sha256"] for f in stored["files"]}
        assert meta["report_run"].run_id == outcome["run_id"]
        assert {r.asset_materialization.metadata["publish_run"].run_id for r in publications} == {
            result.run_id, again.run_id}
        assert meta["manifest"].path == stored["manifest_location"] and meta["file_count"].value == 5
