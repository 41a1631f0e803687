"""Configuration through the CLI: bad input is refused whole, good input round-trips."""

from __future__ import annotations

import json
import textwrap

import pytest
from click.testing import CliRunner

from compliance_reports.cli.main import main

DESTINATIONS = """\
name: archive
type: storage
provider: local
base_path: delivered
---
name: officer-mail
type: email
host: 127.0.0.1
port: 8025
security: none
from: reports@example.org
to: [officer@example.org]
"""

GOOD_REPORT = """\
id: {id}
name: Daily summary
organization_id: org-1
report_type: general_compliance
schedule: {{frequency: daily, time: "06:00", timezone: Europe/Berlin}}
formats: [csv, json]
destinations: [archive]
"""


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("COMPLIANCE_DB_URL", raising=False)
    monkeypatch.delenv("AUDIT_DB_URL", raising=False)
    runner = CliRunner()

    def run(*args: str, expect: int = 0):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result

    def write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return str(path)

    run("db", "upgrade")
    run("destinations", "apply", "-f", write("destinations.yaml", DESTINATIONS))
    run.write = write
    return run


def _report_ids(cli) -> list[str]:
    return [r["id"] for r in json.loads(cli("reports", "list", "--json").output)]


BAD_REPORTS = {
    "yaml_error": ("id: x\n  name: [unclosed\n", ["YAML error", "line"]),
    "unknown_field": (GOOD_REPORT.format(id="r-bad") + "colour: blue\n", ["'colour'", "unknown field"]),
    "bad_timezone": (
        GOOD_REPORT.format(id="r-bad").replace("Europe/Berlin", "Mars/Olympus"),
        ["'schedule.timezone'", "Mars/Olympus"],
    ),
    "time_25": (GOOD_REPORT.format(id="r-bad").replace('"06:00"', '"25:00"'), ["'schedule.time'", "25:00"]),
    "day_of_month_0": (
        GOOD_REPORT.format(id="r-bad").replace("frequency: daily", "frequency: monthly, day_of_month: 0"),
        ["'schedule.day_of_month'", "between 1 and 31"],
    ),
    "day_of_month_32": (
        GOOD_REPORT.format(id="r-bad").replace("frequency: daily", "frequency: monthly, day_of_month: 32"),
        ["'schedule.day_of_month'", "between 1 and 31"],
    ),
    "weekly_without_day": (
        GOOD_REPORT.format(id="r-bad").replace("frequency: daily", "frequency: weekly"),
        ["'schedule'", "day_of_week"],
    ),
    "id_with_pipe": (GOOD_REPORT.format(id="'r|bad'"), ["'id'", "slug"]),
    "id_with_space": (GOOD_REPORT.format(id="'r bad'"), ["'id'", "slug"]),
    "unknown_destination": (
        GOOD_REPORT.format(id="r-bad").replace("[archive]", "[archive, nowhere]"),
        ["'r-bad'", "'destinations'", "nowhere"],
    ),
    "organization_criteria": (
        GOOD_REPORT.format(id="r-bad") + "criteria: {organization_id: org-2}\n",
        ["'criteria'", "organization"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_REPORTS))
def test_bad_report_file_is_rejected_whole_with_the_field_named(cli, case):
    bad, needles = BAD_REPORTS[case]
    # A valid document first: it must not be written either.
    text = GOOD_REPORT.format(id="r-good") + "---\n" + bad
    path = cli.write(f"{case}.yaml", text)
    result = cli("reports", "apply", "-f", path, expect=2)
    assert path in result.output
    if case != "yaml_error":
        assert "document 2" in result.output
    for needle in needles:
        assert needle in result.output, result.output
    assert _report_ids(cli) == []


BAD_DESTINATIONS = {
    "webhook_ftp": ("name: hook\ntype: webhook\nurl: ftp://example.org/in\n", ["'hook'", "'url'", "http"]),
    "plaintext_password": (
        "name: mail\ntype: email\nhost: smtp.example.org\nfrom: a@example.org\nto: [b@example.org]\n"
        "username: u\npassword: hunter2\n",
        ["'mail'", "'password'", "password_env"],
    ),
    "unknown_type": ("name: pager\ntype: pager\n", ["'type'"]),
    "credential_header": (
        "name: hook\ntype: webhook\nurl: https://example.org/in\nheaders: {Authorization: Bearer abc}\n",
        ["'headers'", "headers_env"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_DESTINATIONS))
def test_bad_destination_is_rejected_and_nothing_written(cli, case):
    bad, needles = BAD_DESTINATIONS[case]
    text = "name: extra-archive\ntype: storage\nprovider: local\nbase_path: x\n---\n" + bad
    path = cli.write(f"{case}.yaml", text)
    result = cli("destinations", "apply", "-f", path, expect=2)
    assert path in result.output and "document 2" in result.output
    for needle in needles:
        assert needle in result.output, result.output
    names = [d["name"] for d in json.loads(cli("destinations", "list", "--json").output)]
    assert names == ["archive", "officer-mail"]
    assert "hunter2" not in json.dumps(names)


def test_report_round_trip_and_stale_version_conflict(cli):
    path = cli.write("r.yaml", GOOD_REPORT.format(id="r-1"))
    assert "created (version 1)" in cli("reports", "apply", "-f", path).output
    assert "unchanged" in cli("reports", "apply", "-f", path).output

    listed = json.loads(cli("reports", "list", "--json").output)
    assert [(r["id"], r["frequency"], r["enabled"], r["version"]) for r in listed] == [
        ("r-1", "daily", True, 1)
    ]
    shown = json.loads(cli("reports", "show", "r-1", "--json").output)
    assert shown["schedule"]["timezone"] == "Europe/Berlin" and shown["version"] == 1
    assert shown["created_by"]  # the applying user is recorded

    changed = GOOD_REPORT.format(id="r-1").replace("[csv, json]", "[csv, json, xml]")
    no_version = cli.write("r2.yaml", changed)
    result = cli("reports", "apply", "-f", no_version, expect=2)
    assert "field 'version'" in result.output and "version 1" in result.output

    updated = cli.write("r3.yaml", changed + "version: 1\n")
    assert "updated (version 2)" in cli("reports", "apply", "-f", updated).output
    stale = cli.write("r4.yaml", changed.replace("xml]", "xml, parquet]") + "version: 1\n")
    result = cli("reports", "apply", "-f", stale, expect=2)
    assert "conflict" in result.output and "version 2" in result.output
    shown = json.loads(cli("reports", "show", "r-1", "--json").output)
    assert shown["formats"] == ["csv", "json", "xml"] and shown["version"] == 2


def test_enable_disable_unschedule_delete(cli):
    cli("reports", "apply", "-f", cli.write("r.yaml", GOOD_REPORT.format(id="r-1")))
    assert "disabled (version 2)" in cli("reports", "disable", "r-1").output
    assert json.loads(cli("reports", "show", "r-1", "--json").output)["enabled"] is False
    assert "enabled (version 3)" in cli("reports", "enable", "r-1").output
    assert "unschedule requested" in cli("reports", "unschedule", "r-1").output
    assert "run requested" in cli("reports", "run-now", "r-1", "--period", "2026-11-27").output
    assert "--period" in cli("reports", "run-now", "r-1", "--period", "2026-13-01", expect=2).output
    cli("reports", "delete", "r-1", "--yes")
    assert _report_ids(cli) == []
    assert "does not exist" in cli("reports", "show", "r-1", expect=2).output
    assert "does not exist" in cli("reports", "unschedule", "nope", expect=2).output


def test_report_from_template_with_overrides(cli):
    templates = cli.write(
        "t.yaml",
        """\
        name: base-hipaa
        description: monthly HIPAA
        defaults:
          report_type: hipaa_audit_trail
          schedule: {frequency: monthly, time: "05:00", timezone: America/New_York, day_of_month: last}
          formats: [pdf, csv]
          destinations: [archive]
        """,
    )
    cli("templates", "apply", "-f", templates)
    report = cli.write(
        "r.yaml",
        """\
        id: from-template
        template: base-hipaa
        name: From template
        organization_id: org-9
        schedule: {timezone: Europe/Paris}
        formats: [pdf]
        """,
    )
    cli("reports", "apply", "-f", report)
    shown = json.loads(cli("reports", "show", "from-template", "--json").output)
    assert shown["report_type"] == "hipaa_audit_trail"
    assert shown["schedule"] == {
        "frequency": "monthly", "time": "05:00", "timezone": "Europe/Paris", "day_of_week": None,
        "day_of_month": "last", "start_date": None, "end_date": None, "max_catch_up": 3,
    }
    assert shown["formats"] == ["pdf"] and shown["destinations"] == ["archive"]

    unknown = cli.write("u.yaml", "id: x\ntemplate: nope\nname: x\norganization_id: o\n")
    assert "unknown template 'nope'" in cli("reports", "apply", "-f", unknown, expect=2).output
