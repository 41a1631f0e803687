"""--json on every command that prints: stdout parses as JSON, the exit status says the outcome."""

from __future__ import annotations

import json

from compliance_reports_tests.cli.conftest import REPORT

DESTINATION = """\
name: archive
type: storage
provider: local
base_path: delivered
"""

TEMPLATE = """\
kind: template
name: daily-general
description: Daily general report
defaults:
  report_type: general_compliance
  formats: [json]
"""


def _json(result):
    return json.loads(result.stdout)


def test_configuration_commands_print_json(cli, tmp_path):
    assert {row["database"] for row in _json(cli("db", "upgrade", "--json"))} == {"app", "audit"}

    destination = tmp_path / "d.yaml"
    destination.write_text(DESTINATION)
    assert _json(cli("destinations", "apply", "-f", str(destination), "--json")) == [
        {"destination": "archive", "action": "created", "version": 1}]
    assert [d["name"] for d in _json(cli("destinations", "list", "--json"))] == ["archive"]

    template = tmp_path / "t.yaml"
    template.write_text(TEMPLATE)
    applied = _json(cli("templates", "apply", "-f", str(template), "--json"))
    assert [(t["template"], t["action"]) for t in applied] == [("daily-general", "created")]
    assert [t["name"] for t in _json(cli("templates", "list", "--json"))] == ["daily-general"]

    report = tmp_path / "r.yaml"
    report.write_text(REPORT)
    # The fixture applied the same file: applying it again changes nothing.
    [again] = _json(cli("reports", "apply", "-f", str(report), "--json"))
    assert again["report"] == "berlin-daily" and again["action"] == "unchanged"
    assert [r["id"] for r in _json(cli("reports", "list", "--json"))] == ["berlin-daily"]
    assert _json(cli("reports", "show", "berlin-daily", "--json"))["id"] == "berlin-daily"
    assert len(_json(cli("reports", "next-runs", "berlin-daily", "-n", "2", "--json"))) == 2

    assert _json(cli("reports", "delete", "berlin-daily", "--yes", "--json")) == {
        "report_id": "berlin-daily", "deleted": True}
    assert _json(cli("destinations", "delete", "archive", "--yes", "--json")) == {
        "destination": "archive", "deleted": True}
    # Refusals keep stdout empty (the one-line error is on stderr) and exit 2.
    missing = cli("reports", "delete", "berlin-daily", "--yes", "--json", expect=2)
    assert missing.stdout == "" and "berlin-daily" in missing.stderr


def test_doctor_and_env_print_json(cli):
    report = cli("doctor", "--no-daemon", "--json")
    doctor = _json(report)
    assert doctor["failed"] == 0 and doctor["failed"] == sum(c["status"] == "FAIL" for c in doctor["checks"])
    assert {"status", "subject", "detail", "fix"} <= set(doctor["checks"][0])
    assert any(c["subject"].startswith("app database") for c in doctor["checks"])
    assert "DAGSTER_HOME" in json.dumps(_json(cli("env", "--json")))
