"""A CLI against a fresh DAGSTER_HOME and embedded databases, with one daily report applied."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from compliance_reports.cli.main import main

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
