"""serve-metrics: /metrics scraped over HTTP and parsed, /healthz 200 and 503."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from dagster import instance_for_test
from dagster._daemon.types import DaemonHeartbeat
from prometheus_client.parser import text_string_to_metric_families

from compliance_reports.config import store as config_store
from compliance_reports.config.models import ReportConfig, WebhookDestination
from compliance_reports.db.engine import make_engine
from compliance_reports.delivery import ledger
from compliance_reports.demo.seed import SeedOptions, seed_audit_log
from compliance_reports.operations.metrics import make_app, make_metrics_server
from compliance_reports.orchestration.manual_run import run_report_now
from compliance_reports.periods import period_window
from compliance_reports_tests.delivery.conftest import fast_retry, make_publication


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _beat(instance, age_s: float) -> None:
    for daemon_type in instance.get_required_daemon_types():
        instance.add_daemon_heartbeat(DaemonHeartbeat(time.time() - age_s, daemon_type, "test-daemon", []))


@pytest.fixture
def served(engine, sqlite_url, tmp_path, monkeypatch):
    """A report with one successful period, ledger rows in every state, a live HTTP server."""
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(tmp_path / "data"))
    end = datetime.now(timezone.utc).date() - timedelta(days=1)
    seed_audit_log(engine, SeedOptions(orgs=1, days=3, events_per_day=50, seed=9, end_date=end))
    report = ReportConfig.model_validate({
        "id": "daily-general", "name": "Daily", "organization_id": "org-stmarys",
        "report_type": "general_compliance", "schedule": {"frequency": "daily", "timezone": "UTC"},
        "formats": ["json"],
    })
    config_store.apply_reports(engine, [report])
    period = end.isoformat()
    hook = WebhookDestination(type="webhook", name="hook", url="https://example.test/h", retry=fast_retry())
    vault = WebhookDestination(type="webhook", name="vault", url="https://example.test/v", retry=fast_retry())
    publication = make_publication(tmp_path / "pub", report_id="daily-general", period=period)
    now = datetime.now(timezone.utc)
    sent, dead, failed_due, failed_later = ledger.ensure_rows(
        engine, publication, hook, ["a", "b", "c", "d"], 3, now=now)
    ledger.ensure_rows(engine, publication, vault, ["e", "f"], 3, now=now)  # pending
    for row_id in (sent, dead, failed_due, failed_later):
        ledger.claim(engine, row_id, 60, now)
    ledger.mark_sent(engine, sent, "HTTP 200", now)
    ledger.mark_failed(engine, dead, "HTTP 400", now, hook.retry, False, None)
    ledger.mark_failed(engine, failed_due, "HTTP 503", now - timedelta(hours=2), hook.retry, True, 1)
    ledger.mark_failed(engine, failed_later, "HTTP 503", now, hook.retry, True, 3600)
    with instance_for_test() as instance:
        outcome = run_report_now(report, period, app_db_url=sqlite_url, instance=instance, log_level="WARNING")
        assert outcome["status"] == "SUCCESS", outcome["messages"]
        audit = make_engine(sqlite_url)
        server = make_metrics_server("127.0.0.1", _free_port(), make_app(engine, audit, instance))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}", instance, period
        finally:
            server.shutdown()
            server.server_close()
            audit.dispose()


def test_metrics_match_the_ledger_and_the_report(served, engine):
    base, instance, period = served
    status, body = _get(base + "/metrics")
    assert status == 200
    samples = _samples(body)
    rows = ledger.list_rows(engine)
    for row in rows:
        expected = sum(1 for r in rows if (r["status"], r["destination"]) == (row["status"], row["destination"]))
        assert samples[("compliance_deliveries", (("destination", row["destination"]), ("status", row["status"])))] == expected
    assert samples[("compliance_deliveries", (("destination", "vault"), ("status", "pending")))] == 2
    assert samples[("compliance_delivery_retry_queue_depth", ())] == 2
    assert samples[("compliance_delivery_retry_due", ())] == 1
    assert samples[("compliance_reports_by_outcome", (("outcome", "success"),))] == 1
    assert samples[("compliance_reports_by_outcome", (("outcome", "failure"),))] == 0
    assert samples[("compliance_report_last_outcome", (("frequency", "daily"), ("outcome", "success"),
                                                      ("report_id", "daily-general")))] == 1
    window_end = period_window(period, "daily", "UTC").end_utc
    age = samples[("compliance_report_seconds_since_last_success", (("frequency", "daily"), ("report_id", "daily-general")))]
    assert abs(age - (datetime.now(timezone.utc) - window_end).total_seconds()) < 60
    verdicts = [labels for (name, labels), value in samples.items() if name == "compliance_report_integrity" and value == 1]
    assert len(verdicts) == 1 and dict(verdicts[0])["report_id"] == "daily-general"
    assert samples[("compliance_reports_by_integrity", (("verdict", dict(verdicts[0])["verdict"]),))] == 1
    assert samples[("compliance_metrics_collect_success", ())] == 1

    pending = next(r["id"] for r in rows if r["destination"] == "vault")
    assert ledger.claim(engine, pending, 60, datetime.now(timezone.utc)) is not None
    ledger.mark_sent(engine, pending, "HTTP 200", datetime.now(timezone.utc))
    again = _samples(_get(base + "/metrics")[1])  # collected on each scrape, not cached
    assert again[("compliance_deliveries", (("destination", "vault"), ("status", "pending")))] == 1


def test_healthz_200_with_fresh_heartbeats_503_when_stale(served):
    base, instance, _ = served
    status, body = _get(base + "/healthz")
    assert status == 503  # no daemon has ever sent a heartbeat
    assert json.loads(body)["checks"]["daemon"]["ok"] is False
    _beat(instance, age_s=5)
    status, body = _get(base + "/healthz")
    data = json.loads(body)
    assert status == 200, body
    assert data["status"] == "ok" and data["checks"]["app_database"] == {"ok": True}
    _beat(instance, age_s=3600)
    status, body = _get(base + "/healthz")
    assert status == 503 and json.loads(body)["status"] == "unhealthy"
    assert _get(base + "/nowhere")[0] == 404


def test_healthz_503_when_a_database_is_unreachable(engine, tmp_path):
    # Nothing listens on a just-freed port: the connection is refused at once.
    missing = make_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{_free_port()}/audit")
    with instance_for_test() as instance:
        _beat(instance, age_s=1)
        server = make_metrics_server("127.0.0.1", _free_port(), make_app(engine, missing, instance))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            status, body = _get(f"http://127.0.0.1:{server.server_port}/healthz")
        finally:
            server.shutdown()
            server.server_close()
    data = json.loads(body)
    assert status == 503
    assert data["checks"]["app_database"]["ok"] is True and data["checks"]["audit_database"]["ok"] is False
    assert data["checks"]["daemon"]["ok"] is True


def test_serve_metrics_command_serves_until_stopped(tmp_path):
    port = _free_port()
    env = {**os.environ, "COMPLIANCE_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path / "home"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("COMPLIANCE_DB_URL", None)
    env.pop("AUDIT_DB_URL", None)
    cli = [sys.executable, "-m", "compliance_reports.cli.main"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    process = subprocess.Popen([*cli, "serve-metrics", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/metrics")
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "serve-metrics did not start"
                time.sleep(0.3)
        assert status == 200
        assert _samples(body)[("compliance_metrics_collect_success", ())] == 1
        assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 503  # no daemon here
    finally:
        process.terminate()
        process.wait(timeout=30)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = subprocess.run([*cli, "serve-metrics", "--port", str(busy.getsockname()[1])], env=env, capture_output=True,
                               text=True, timeout=120)
    assert taken.returncode == 1 and "--port: cannot listen on 127.0.0.1" in taken.stderr


def test_sample_alert_rules_use_metrics_the_exporter_exposes(served):
    import re

    import yaml

    base, _, _ = served
    exposed = {family.name for family in text_string_to_metric_families(_get(base + "/metrics")[1])}
    deploy = Path(__file__).resolve().parents[2] / "deploy"
    rules = yaml.safe_load((deploy / "alert-rules.yml").read_text())["groups"][0]["rules"]
    used = {name for rule in rules for name in re.findall(r"\b(compliance_[a-z_]+)", rule["expr"])}
    assert used and used <= exposed, used - exposed
    scrape = yaml.safe_load((deploy / "prometheus.yml").read_text())
    assert scrape["rule_files"] == ["alert-rules.yml"]
    assert scrape["scrape_configs"][0]["metrics_path"] == "/metrics"
