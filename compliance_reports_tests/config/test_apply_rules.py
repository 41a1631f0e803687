"""Rules of apply beyond the bad-input table: who created a report, what the key-dependent
options need, what templates may leave open, and the last-resort error line."""

from __future__ import annotations

import json
import socket
import textwrap

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from compliance_reports.cli.main import main
from compliance_reports.cli.output import describe_failure
from compliance_reports.db.schema import report_configs

DESTINATIONS = """\
name: archive
type: storage
provider: local
base_path: delivered
"""
REPORT = """\
id: r-1
name: Daily summary
organization_id: org-1
report_type: general_compliance
schedule: {frequency: daily, time: "06:00", timezone: Europe/Berlin}
formats: [csv]
destinations: [archive]
"""


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("COMPLIANCE_DB_URL", raising=False)
    monkeypatch.delenv("AUDIT_DB_URL", raising=False)
    monkeypatch.setenv("COMPLIANCE_CHECKPOINT_KEY", "apply-rules-key")

    def run(*args: str, expect: int = 0):
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result

    def write(name: str, content: str) -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(content))
        return str(path)

    run("db", "upgrade")
    run("destinations", "apply", "-f", write("d.yaml", DESTINATIONS))
    run.write = write
    return run


def _created_by(report_id: str) -> str | None:
    from compliance_reports.db.engine import make_engine
    from compliance_reports.settings import load_settings

    engine = make_engine(load_settings().compliance_db_url)
    with engine.connect() as conn:
        row = conn.execute(select(report_configs.c.created_by, report_configs.c.config)
                           .where(report_configs.c.id == report_id)).one()
    assert "created_by" not in row.config  # the column is the only record
    return row.created_by


def test_created_by_comes_from_as_never_from_the_file(cli):
    path = cli.write("r.yaml", REPORT + "created_by: the-ceo\n")
    result = cli("reports", "apply", "-f", path, "--as", "alice")
    assert "created (version 1)" in result.stdout
    assert "'created_by' is ignored" in result.stderr and path in result.stderr
    assert _created_by("r-1") == "alice"
    shown = json.loads(cli("reports", "show", "r-1", "--json").output)
    assert shown["created_by"] == "alice"

    # An update by someone else keeps the creator; `show` output applies back unchanged.
    shown_path = cli.write("shown.yaml", cli("reports", "show", "r-1").output)
    assert "unchanged" in cli("reports", "apply", "-f", shown_path, "--as", "bob").output
    changed = cli.write("r2.yaml", REPORT.replace("Daily summary", "Renamed") + "version: 1\n")
    assert "updated (version 2)" in cli("reports", "apply", "-f", changed, "--as", "bob").output
    assert _created_by("r-1") == "alice"


def test_a_row_stored_before_an_option_existed_applies_again_unchanged(cli):
    """After an upgrade that adds an option (here options.pdf_table_row_limit), the same file
    applied again is `unchanged`, not an update that asks for the current version."""
    from sqlalchemy import update

    from compliance_reports.db.engine import make_engine
    from compliance_reports.settings import load_settings

    path = cli.write("r.yaml", REPORT)
    cli("reports", "apply", "-f", path)
    engine = make_engine(load_settings().compliance_db_url)
    with engine.begin() as conn:
        config = dict(conn.execute(select(report_configs.c.config)
                                   .where(report_configs.c.id == "r-1")).scalar_one())
        config["options"] = {k: v for k, v in config["options"].items() if k != "pdf_table_row_limit"}
        conn.execute(update(report_configs).where(report_configs.c.id == "r-1").values(config=config))
    assert "unchanged (version 1)" in cli("reports", "apply", "-f", path).output
    changed = cli.write("r2.yaml", REPORT + "options: {pdf_table_row_limit: 100}\n")
    assert "version" in cli("reports", "apply", "-f", changed, expect=2).output


def test_created_by_defaults_to_the_login_name(cli, monkeypatch):
    monkeypatch.setenv("LOGNAME", "carol")
    monkeypatch.setenv("USER", "carol")
    cli("reports", "apply", "-f", cli.write("r.yaml", REPORT))
    assert _created_by("r-1") == "carol"


def test_a_login_name_that_is_not_storable_becomes_unknown(cli, monkeypatch):
    monkeypatch.setenv("LOGNAME", "x" * 300)
    monkeypatch.setenv("USER", "x" * 300)
    cli("reports", "apply", "-f", cli.write("r.yaml", REPORT))
    assert _created_by("r-1") == "unknown"


def test_redaction_applies_with_a_checkpoint_key_and_not_with_a_bad_one(cli, monkeypatch):
    redacting = cli.write("r.yaml", REPORT + "export: {redact_identifiers: true}\n")
    monkeypatch.setenv("COMPLIANCE_CHECKPOINT_KEY", "k\udcff")  # bytes that are not UTF-8
    result = cli("reports", "apply", "-f", redacting, expect=2)
    assert "'export.redact_identifiers'" in result.output and "UTF-8" in result.output
    monkeypatch.setenv("COMPLIANCE_CHECKPOINT_KEY", "a-proper-key")
    assert "created" in cli("reports", "apply", "-f", redacting).output


def test_templates_may_leave_fields_open_and_reports_fill_them(cli):
    cli("templates", "apply", "-f", cli.write("t.yaml", """\
        name: weekly-base
        defaults:
          schedule: {day_of_week: friday, time: "07:30"}
          options: {pdf_event_limit: 50}
        """))
    report = cli.write("r.yaml", """\
        id: from-template
        template: weekly-base
        name: From a partial template
        organization_id: org-1
        report_type: custom
        schedule: {frequency: weekly, timezone: Europe/Paris}
        """)
    cli("reports", "apply", "-f", report)
    shown = json.loads(cli("reports", "show", "from-template", "--json").output)
    assert shown["schedule"]["day_of_week"] == "friday" and shown["schedule"]["time"] == "07:30"
    assert shown["options"]["pdf_event_limit"] == 50


def test_an_unreachable_database_is_one_line_and_exit_1(tmp_path, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COMPLIANCE_DB_URL", f"postgresql+psycopg2://postgres@127.0.0.1:{port}/none")
    result = CliRunner().invoke(main, ["reports", "list"], catch_exceptions=False)
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: database failure:") and "Traceback" not in result.output


@pytest.mark.postgres
def test_database_refusals_are_bad_input_in_one_line(pg_engine):
    """The last resort for values that slip past validation: PostgreSQL's own refusals."""
    from sqlalchemy import exc as sa_exc

    cases = [
        ("INSERT INTO destinations (name, type, config, version, created_at, updated_at) "
         "VALUES (:v, 'email', '{}', 1, now(), now())", {"v": "x" * 300}, "too long"),
        ("SELECT CAST(:v AS integer)", {"v": "12a"}, "invalid input syntax"),
        ("SELECT :v", {"v": "a\x00b"}, "NUL"),
    ]
    for statement, params, needle in cases:
        with pytest.raises((sa_exc.StatementError, ValueError)) as caught, pg_engine.connect() as conn:
            conn.execute(text(statement), params)
        status, line = describe_failure(caught.value)
        assert status == 2 and needle in line and "\n" not in line, line
        assert "INSERT" not in line and "SELECT" not in line  # no statement, no parameters


def test_date_overflow_is_bad_input():
    from datetime import date, timedelta

    with pytest.raises(OverflowError) as caught:
        date(9999, 12, 31) + timedelta(days=1)
    assert describe_failure(caught.value)[0] == 2


def test_the_examples_apply_cleanly_and_again_unchanged(tmp_path, monkeypatch):
    from compliance_reports.settings import PACKAGE_DIR

    examples = PACKAGE_DIR.parent / "examples"
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("COMPLIANCE_DB_URL", raising=False)
    monkeypatch.delenv("AUDIT_DB_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], catch_exceptions=False).exit_code == 0
    for _ in range(2):
        for group, name in (("templates", "templates"), ("destinations", "destinations"), ("reports", "reports")):
            result = runner.invoke(main, [group, "apply", "-f", str(examples / f"{name}.yaml")],
                                   catch_exceptions=False)
            assert result.exit_code == 0 and not result.stderr, result.output
    assert result.output.count("unchanged") == 5
