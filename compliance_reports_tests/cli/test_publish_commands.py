"""`publish retry` and `deliveries redeliver` from the stored files, without Dagster."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from compliance_reports.cli.main import main
from compliance_reports.config import store as config_store
from compliance_reports.config.models import parse_destination
from compliance_reports.delivery import ledger
from compliance_reports_tests.delivery.conftest import LOCAL_RECEIVER, StoredRuns


@pytest.fixture
def setup(engine, tmp_path, monkeypatch, http_factory):
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COMPLIANCE_DB_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.delenv("AUDIT_DB_URL", raising=False)
    monkeypatch.delenv("COMPLIANCE_ARTIFACT_DIR", raising=False)
    monkeypatch.delenv("COMPLIANCE_MANIFEST_KEY", raising=False)
    peer = http_factory()
    config_store.apply_destinations(engine, [parse_destination(
        {"name": "siem", "type": "webhook", "url": peer.url, **LOCAL_RECEIVER,
         "retry": {"max_attempts": 2, "initial_delay_s": 0.01, "max_delay_s": 0.02}})])
    runs = StoredRuns(engine, tmp_path)  # its artifact store is the settings' <data folder>/artifacts
    config_store.apply_reports(engine, [runs.report.model_copy(update={"destinations": ["siem"]})])
    runner = CliRunner()

    def cli(*args, expect=0):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result

    return cli, runs, peer


def test_publish_retry_resumes_from_the_stored_report_run(setup, engine):
    cli, runs, peer = setup
    runs.store_run("run-1")  # the report run succeeded; its publish run failed before exporting
    first = cli("publish", "retry", "--report", "hipaa-monthly", "--period", "2026-11-01")
    assert "run run-1, 2 file(s) exported" in first.output and "siem -> " in first.output
    assert len(peer.requests) == 1
    assert peer.requests[0].json()["run_id"] == "run-1"

    again = cli("publish", "retry", "--report", "hipaa-monthly", "--period", "2026-11-01", "--json")
    assert [o["status"] for o in json.loads(again.output[again.output.index("["):])] == ["already_sent"]
    assert len(peer.requests) == 1  # resumed, never duplicated
    assert [r["status"] for r in ledger.list_rows(engine)] == ["sent"]

    missing = cli("publish", "retry", "--report", "hipaa-monthly", "--period", "2026-10-01", expect=2)
    assert "no stored report run" in missing.output
    cli("publish", "retry", "--report", "nope", "--period", "2026-11-01", expect=2)


def test_publish_retry_with_the_receiver_down_exits_1_and_leaves_the_row_to_the_sweep(setup, engine):
    cli, runs, peer = setup
    peer.default = (503, {}, b"down")
    runs.store_run("run-1")
    result = cli("publish", "retry", "--report", "hipaa-monthly", "--period", "2026-11-01", expect=1)
    assert "failed" in result.output and "HTTP 503" in result.output
    [row] = ledger.list_rows(engine)
    assert row["status"] == "failed" and row["next_attempt_at"] is not None


def test_redeliver_sends_again_on_purpose(setup, engine):
    cli, runs, peer = setup
    runs.store_run("run-1")
    cli("publish", "retry", "--report", "hipaa-monthly", "--period", "2026-11-01")
    result = cli("deliveries", "redeliver", "--report", "hipaa-monthly", "--period", "2026-11-01")
    assert "siem -> " in result.output and ": sent" in result.output
    assert len(peer.requests) == 2
    keys = [r.headers["Idempotency-Key"] for r in peer.requests]
    assert keys[0] != keys[1]
    rows = ledger.list_rows(engine)
    assert [(r["purpose"], r["sequence"], r["status"]) for r in rows] == [
        ("delivery", 0, "sent"), ("redelivery", 1, "sent")]
    listed = json.loads(cli("deliveries", "list", "--period", "2026-11-01", "--json").output)
    assert len(listed) == 2

    bad = cli("deliveries", "redeliver", "--report", "hipaa-monthly", "--period", "2026-11-01",
              "--destination", "nope", expect=2)
    assert "nope" in bad.output
    never = cli("deliveries", "redeliver", "--report", "hipaa-monthly", "--period", "2026-10-01", expect=2)
    assert "no delivery on record" in never.output
    assert len(peer.requests) == 2
