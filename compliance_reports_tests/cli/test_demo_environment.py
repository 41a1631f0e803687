"""`demo run` then the daemon's publish sensor: one environment, no redundant publish runs."""

from __future__ import annotations

import json
import os
import socket
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from dagster import DagsterInstance, build_sensor_context

from compliance_reports.cli.main import main
from compliance_reports.settings import parse_env_file
from compliance_reports_tests.orchestration.helpers import location_for_tests

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def demo_env(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(data))
    for name in ("COMPLIANCE_ENV_FILE", "DAGSTER_HOME", "COMPLIANCE_DB_URL", "AUDIT_DB_URL",
                 "COMPLIANCE_MANIFEST_KEY", "COMPLIANCE_CHECKPOINT_KEY", "COMPLIANCE_DEMO_SMTP_PORT",
                 *(f"COMPLIANCE_FIRST_PERIOD_{f}" for f in ("DAILY", "WEEKLY", "MONTHLY", "QUARTERLY"))):
        monkeypatch.setenv(name, "")  # so that monkeypatch restores what the CLI sets
        monkeypatch.delenv(name)
    return data


def test_demo_then_publish_sensor_launches_no_redundant_publish_run(demo_env):
    # The example's fixed port is taken: the demo must pick another one, not fail.
    with socket.socket() as busy:
        try:
            busy.bind(("127.0.0.1", 8025))
        except OSError:
            pass  # someone else holds it already, which is the same situation
        result = CliRunner().invoke(main, ["demo", "run", "--examples", str(EXAMPLES), "--orgs", "1",
                                           "--days", "20", "--events-per-day", "40", "--json"],
                                    catch_exceptions=False)
    assert result.exit_code == 0, result.output
    values = parse_env_file((demo_env / "compliance.env").read_text())
    port = int(values["COMPLIANCE_DEMO_SMTP_PORT"])
    assert port != 8025
    assert len(values["COMPLIANCE_MANIFEST_KEY"]) == 64 and len(values["COMPLIANCE_CHECKPOINT_KEY"]) == 64
    # The assets start where the seeded data starts (20 days up to today, UTC), or earlier for
    # the period before the current one, which the demo runs: last month here.
    today = datetime.now(timezone.utc).date()
    first_day = today - timedelta(days=19)
    assert values["COMPLIANCE_FIRST_PERIOD_DAILY"] == first_day.isoformat()
    last_month = ((today - timedelta(days=2)).replace(day=1) - timedelta(days=1)).replace(day=1)
    assert values["COMPLIANCE_FIRST_PERIOD_MONTHLY"] == min(first_day.replace(day=1), last_month).isoformat()
    assert date.fromisoformat(values["COMPLIANCE_FIRST_PERIOD_WEEKLY"]).weekday() == 0
    summary = json.loads(result.stdout)  # --json: the narration went to stderr
    assert summary["dagster_home"] == os.environ["DAGSTER_HOME"]
    deliveries = " ".join(r["deliveries"] for r in summary["reports"])
    assert {r["report_run"] for r in summary["reports"]} == {"SUCCESS"}
    assert "=sent" in deliveries and "=dead" not in deliveries and "=failed" not in deliveries
    assert "Seeded" in result.stderr
    assert list((demo_env / "outbox").glob("*.eml"))

    url = f"sqlite:///{demo_env.resolve() / 'compliance.db'}"
    defs = location_for_tests(url)
    sensor = defs.get_repository_def().get_sensor_def("publish_report_sensor")
    with DagsterInstance.get() as instance:
        materialized = sum(
            len(instance.get_materialized_partitions(key)) for key in defs.get_repository_def().asset_graph.get_all_asset_keys()
            if key.path[0].endswith("_compliance_report")
        )
        assert materialized >= 3  # the demo's reports
        with build_sensor_context(instance=instance, definitions=defs, resources=defs.resources) as context:
            tick = sensor.evaluate_tick(context)
    assert tick.run_requests == []
    assert tick.cursor  # it moved past the demo's materializations


def test_mail_catcher_command_serves_the_recorded_port_until_terminated(tmp_path):
    import smtplib
    import subprocess
    import sys
    import time

    data = tmp_path / "data"
    data.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "COMPLIANCE_DATA_DIR": str(data), "PYTHONPATH": str(EXAMPLES.parent)}
    env.pop("COMPLIANCE_ENV_FILE", None)
    env.pop("COMPLIANCE_DEMO_SMTP_PORT", None)
    cli = [sys.executable, "-m", "compliance_reports.cli.main", "demo", "mail-catcher"]
    idle = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert idle.returncode == 0 and "no mail catcher started" in idle.stdout

    (data / "compliance.env").write_text(f"COMPLIANCE_DEMO_SMTP_PORT={port}\n")
    process = subprocess.Popen(cli, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                    smtp.sendmail("a@example.org", ["officer@example.org"], "Subject: t\r\n\r\nbody")
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "the mail catcher did not start"
                time.sleep(0.3)
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0  # SIGTERM stops it cleanly (make dev's trap)
    assert [p.name for p in (data / "outbox").iterdir()] == ["0001-officer@example.org.eml"]
