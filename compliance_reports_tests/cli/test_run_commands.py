"""CLI next-runs, run and history against a real DAGSTER_HOME instance."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from compliance_reports.demo.seed import SeedOptions, seed_audit_log


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
    assert outcome["status"] == "SUCCESS" and outcome["job"] == "daily_reports_job"
    assert outcome["integrity_verdict"] in {"VERIFIED", "INCOMPLETE"} and outcome["event_count"] > 0
    assert [Path(f).name for f in outcome["files"]] == ["report.json", "events.parquet"]
    assert all(Path(f).is_file() for f in outcome["files"])
    assert "daemon" in outcome["publishing"]
    history = json.loads(cli("history", "berlin-daily", "--json").stdout)
    assert [(h["run_id"], h["status"], h["period"], h["trigger"], h["job"]) for h in history] == [
        (outcome["run_id"], "SUCCESS", outcome["period"], "manual", "daily report")
    ]
    earlier = (datetime.fromisoformat(outcome["period"]) - timedelta(days=1)).date().isoformat()
    text = cli("run", "berlin-daily", "--period", earlier).stdout
    assert f"berlin-daily {earlier}: daily_reports_job run " in text and "SUCCESS" in text
    assert "integrity: " in text and "events: " in text and "stored: " in text
    assert "wait for the daemon" in text
    bad = cli("run", "berlin-daily", "--period", "2026-11-31", expect=2)
    assert "--period" in bad.output
    future = (datetime.now(timezone.utc).date() + timedelta(days=2)).isoformat()
    assert "has not ended" in cli("run", "berlin-daily", "--period", future, expect=2).output


WEEKLY = """\
id: kiritimati-weekly
name: Kiritimati weekly
organization_id: org-nordklinik
report_type: general_compliance
schedule: {frequency: weekly, day_of_week: monday, timezone: Pacific/Kiritimati}
formats: [json]
"""


def _one_line_refusal(result, *fragments: str) -> None:
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("--period: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_run_refuses_periods_that_cannot_run_with_exit_2_and_one_line(cli, tmp_path):
    from zoneinfo import ZoneInfo

    today = datetime.now(ZoneInfo("Europe/Berlin")).date().isoformat()
    _one_line_refusal(cli("run", "berlin-daily", "--period", "2024-12-31", expect=2),
                      "daily period 2024-12-31 is before 2025-01-01, the first period of daily_compliance_report")
    _one_line_refusal(cli("run", "berlin-daily", "--period", today, expect=2),
                      f"daily period {today} has not ended in Europe/Berlin")
    path = tmp_path / "weekly.yaml"
    path.write_text(WEEKLY)
    cli("reports", "apply", "-f", str(path))
    _one_line_refusal(cli("run", "kiritimati-weekly", "--period", "2026-11-25", expect=2),
                      "weekly period key '2026-11-25' is a Wednesday; weekly periods start on Monday")
    assert not (tmp_path / "home").exists()  # refused before the Dagster instance was opened


def test_run_now_refuses_before_writing_a_request(cli, tmp_path):
    from zoneinfo import ZoneInfo

    from compliance_reports.config import store as config_store
    from compliance_reports.db.engine import make_engine

    path = tmp_path / "weekly.yaml"
    path.write_text(WEEKLY)
    cli("reports", "apply", "-f", str(path))
    kiritimati_today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    this_week = (kiritimati_today - timedelta(days=kiritimati_today.weekday())).isoformat()
    _one_line_refusal(cli("reports", "run-now", "kiritimati-weekly", "--period", this_week, expect=2),
                      f"weekly period {this_week} has not ended in Pacific/Kiritimati")
    _one_line_refusal(cli("reports", "run-now", "kiritimati-weekly", "--period", "2023-12-25", expect=2),
                      "is before 2024-01-01, the first period of weekly_compliance_report")
    _one_line_refusal(cli("reports", "run-now", "kiritimati-weekly", "--period", "2026-11-01", expect=2),
                      "is a Sunday; weekly periods start on Monday")
    _one_line_refusal(cli("reports", "run-now", "berlin-daily", "--period", "2026-02-30", expect=2),
                      "is not a valid date")
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'compliance.db'}")
    assert config_store.list_requests(engine) == []

    last_week = (kiritimati_today - timedelta(days=kiritimati_today.weekday() + 7)).isoformat()
    ok = cli("reports", "run-now", "kiritimati-weekly", "--period", last_week)
    assert f"period {last_week}" in ok.output
    [row] = config_store.list_requests(engine)
    assert (row["action"], row["period"], row["status"]) == ("run_now", last_week, "pending")
