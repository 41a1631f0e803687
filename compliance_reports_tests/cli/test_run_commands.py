"""CLI next-runs, run and history against a real DAGSTER_HOME instance."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from compliance_reports.cli.main import main
from compliance_reports.demo.seed import SeedOptions, seed_audit_log

REPORT = """\
id: berlin-daily
name: Berlin daily
organization_id: org-nordklinik
report_type: general_compliance
schedule: {frequency: daily, time: "02:30", timezone: Europe/Berlin}
formats: [json]
"""


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("COMPLIANCE_DB_URL", raising=False)
    monkeypatch.delenv("AUDIT_DB_URL", raising=False)
    runner = CliRunner()

    def run(*args, expect=0):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result

    run("db", "upgrade")
    path = tmp_path / "r.yaml"
    path.write_text(REPORT)
    run("reports", "apply", "-f", str(path))
    return run


def test_next_runs_across_the_autumn_dst_change(cli):
    rows = json.loads(cli("reports", "next-runs", "berlin-daily", "-n", "3", "--after", "2026-10-24T12:00:00", "--json").output)
    assert [(r["slot_local"], r["slot_utc"], r["period"]) for r in rows] == [
        ("2026-10-25T02:30:00+02:00", "2026-10-25T00:30:00+00:00", "2026-10-24"),
        ("2026-10-26T02:30:00+01:00", "2026-10-26T01:30:00+00:00", "2026-10-25"),
        ("2026-10-27T02:30:00+01:00", "2026-10-27T01:30:00+00:00", "2026-10-26"),
    ]
    # The 25-hour day: 2026-10-24T22:00Z to 2026-10-25T23:00Z.
    assert (rows[1]["window_start_utc"], rows[1]["window_end_utc"]) == (
        "2026-10-24T22:00:00+00:00", "2026-10-25T23:00:00+00:00"
    )


def test_run_then_history_reads_dagster_run_storage(cli, tmp_path):
    from compliance_reports.db.engine import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'compliance.db'}")
    end = datetime.now(timezone.utc).date() - timedelta(days=1)
    seed_audit_log(engine, SeedOptions(orgs=2, days=3, events_per_day=100, seed=11, end_date=end))
    outcome = json.loads(cli("run", "berlin-daily", "--json").stdout)
    assert outcome["status"] == "SUCCESS"
    history = json.loads(cli("history", "berlin-daily", "--json").stdout)
    assert [(h["run_id"], h["status"], h["period"], h["trigger"]) for h in history] == [
        (outcome["run_id"], "SUCCESS", outcome["period"], "manual")
    ]
    bad = cli("run", "berlin-daily", "--period", "2026-11-31", expect=2)
    assert "--period" in bad.output
    future = (datetime.now(timezone.utc).date() + timedelta(days=2)).isoformat()
    assert "has not ended" in cli("run", "berlin-daily", "--period", future, expect=2).output
