"""The environment file: parsing, precedence (the process wins) and what the CLI sees."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from compliance_reports.cli.main import main
from compliance_reports.settings import (
    DEFAULT_FIRST_PERIODS,
    apply_environment,
    env_file_path,
    first_periods,
    load_settings,
    parse_env_file,
    update_env_file,
)


def test_parse_quotes_comments_and_export_prefix():
    text = """
# a comment
export COMPLIANCE_MANIFEST_KEY=abc123
QUOTED="value with # hash and spaces"
SINGLE='it''s'
TRAILING=plain # note
EMPTY=
"""
    assert parse_env_file(text) == {
        "COMPLIANCE_MANIFEST_KEY": "abc123",
        "QUOTED": "value with # hash and spaces",
        "SINGLE": "it''s",
        "TRAILING": "plain",
        "EMPTY": "",
    }


@pytest.mark.parametrize("line", ["no equals sign", "1ABC=x", "BAD NAME=x"])
def test_parse_refuses_a_malformed_line_naming_it(line):
    with pytest.raises(ValueError, match="line 2: expected NAME=value"):
        parse_env_file(f"OK=1\n{line}\n", "x.env")


def test_default_path_is_in_the_data_folder_and_the_variable_overrides_it(tmp_path):
    assert env_file_path({"COMPLIANCE_DATA_DIR": str(tmp_path)}) == tmp_path / "compliance.env"
    named = tmp_path / "elsewhere.env"
    assert env_file_path({"COMPLIANCE_DATA_DIR": str(tmp_path), "COMPLIANCE_ENV_FILE": str(named)}) == named


def test_process_environment_wins_over_the_file(tmp_path, monkeypatch):
    path = tmp_path / "c.env"
    path.write_text("COMPLIANCE_CHECKPOINT_KEY=from-file\nCOMPLIANCE_MANIFEST_KEY=file-manifest\n")
    monkeypatch.setenv("COMPLIANCE_ENV_FILE", str(path))
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COMPLIANCE_CHECKPOINT_KEY", "from-process")
    for name in ("COMPLIANCE_MANIFEST_KEY", "DAGSTER_HOME"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    taken = apply_environment()
    assert taken == {"COMPLIANCE_MANIFEST_KEY": "file-manifest"}
    assert os.environ["COMPLIANCE_CHECKPOINT_KEY"] == "from-process"
    assert os.environ["DAGSTER_HOME"] == str(tmp_path.resolve() / "dagster_home")


def test_update_keeps_other_lines_and_is_private(tmp_path):
    path = tmp_path / "c.env"
    path.write_text("# mine\nA=1\nB=2\n")
    update_env_file(path, {"B": "3", "C": "4"})
    assert path.read_text() == "# mine\nA=1\nB=3\nC=4\n"
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(data))
    monkeypatch.delenv("COMPLIANCE_ENV_FILE", raising=False)
    for name in ("DAGSTER_HOME", "COMPLIANCE_DB_URL", "AUDIT_DB_URL", "COMPLIANCE_MANIFEST_KEY",
                 "COMPLIANCE_CHECKPOINT_KEY"):
        # set, then delete: monkeypatch restores the original state even of what the CLI adds
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return data


def test_cli_and_doctor_agree_on_dagster_home_and_keys(cli_env):
    (cli_env / "compliance.env").write_text("COMPLIANCE_CHECKPOINT_KEY='" + "c" * 64 + "'\n")
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    shown = json.loads(runner.invoke(main, ["env", "--json"]).output)
    assert shown["exists"] is True
    assert {"name": "COMPLIANCE_CHECKPOINT_KEY", "source": "file"} in shown["variables"]
    doctor = runner.invoke(main, ["doctor"])
    assert "DAGSTER_HOME is not set" not in doctor.output
    assert "COMPLIANCE_CHECKPOINT_KEY is set" in doctor.output
    assert (cli_env / "dagster_home" / "dagster.yaml").is_file()
    exports = runner.invoke(main, ["env", "--shell"]).output
    assert f"export DAGSTER_HOME={cli_env.resolve() / 'dagster_home'}" in exports.splitlines()
    assert f"export COMPLIANCE_CHECKPOINT_KEY={'c' * 64}" in exports.splitlines()


def test_a_malformed_env_file_is_refused_with_exit_2(cli_env):
    (cli_env / "compliance.env").write_text("garbage line\n")
    result = CliRunner().invoke(main, ["env"])
    assert result.exit_code == 2
    assert "COMPLIANCE_ENV_FILE" in result.output and "line 1" in result.output


@pytest.mark.parametrize("raw, expected", [
    (None, None), ("", None), ("https://files.example.org/compliance/", "https://files.example.org/compliance"),
    ("http://10.0.0.5:8080", "http://10.0.0.5:8080"),
])
def test_public_base_url_is_an_http_url_without_trailing_slash(tmp_path, raw, expected):
    env = {"COMPLIANCE_DATA_DIR": str(tmp_path)}
    if raw is not None:
        env["COMPLIANCE_PUBLIC_BASE_URL"] = raw
    assert load_settings(env).public_base_url == expected


@pytest.mark.parametrize("raw", ["files.example.org", "file:///srv/reports", "ftp://x", "https://"])
def test_public_base_url_refuses_anything_but_http_naming_the_variable(tmp_path, raw):
    with pytest.raises(ValueError, match="COMPLIANCE_PUBLIC_BASE_URL"):
        load_settings({"COMPLIANCE_DATA_DIR": str(tmp_path), "COMPLIANCE_PUBLIC_BASE_URL": raw})


def test_first_periods_default_and_override_per_frequency():
    assert first_periods({}) == DEFAULT_FIRST_PERIODS
    chosen = first_periods({"COMPLIANCE_FIRST_PERIOD_DAILY": "2026-06-01",
                            "COMPLIANCE_FIRST_PERIOD_QUARTERLY": "2025-07-01"})
    assert chosen == {**DEFAULT_FIRST_PERIODS, "daily": "2026-06-01", "quarterly": "2025-07-01"}
    assert load_settings({"COMPLIANCE_FIRST_PERIOD_WEEKLY": "2026-11-23"}).first_periods["weekly"] == "2026-11-23"


@pytest.mark.parametrize(("name", "value", "why"), [
    ("COMPLIANCE_FIRST_PERIOD_WEEKLY", "2026-11-24", "Tuesday"),
    ("COMPLIANCE_FIRST_PERIOD_QUARTERLY", "2026-02-01", "calendar quarter"),
    ("COMPLIANCE_FIRST_PERIOD_MONTHLY", "June 2026", "YYYY-MM-DD"),
])
def test_a_bad_first_period_names_its_variable(name, value, why):
    with pytest.raises(ValueError, match=name) as caught:
        load_settings({name: value})
    assert why in str(caught.value)


def test_the_request_check_follows_the_first_period_setting(monkeypatch):
    from datetime import datetime, timezone

    from compliance_reports.scheduling import PeriodRefused, check_requested_period

    now = datetime(2026, 11, 28, 12, tzinfo=timezone.utc)
    check_requested_period("2026-05-01", "daily", "UTC", now)
    monkeypatch.setenv("COMPLIANCE_FIRST_PERIOD_DAILY", "2026-06-01")
    with pytest.raises(PeriodRefused, match="before 2026-06-01"):
        check_requested_period("2026-05-01", "daily", "UTC", now)


def test_first_periods_read_the_environment_file_before_it_is_applied(tmp_path, monkeypatch):
    env_file = tmp_path / "compliance.env"
    env_file.write_text("COMPLIANCE_FIRST_PERIOD_MONTHLY=2026-03-01\n")
    monkeypatch.setenv("COMPLIANCE_ENV_FILE", str(env_file))
    monkeypatch.delenv("COMPLIANCE_FIRST_PERIOD_MONTHLY", raising=False)
    assert first_periods()["monthly"] == "2026-03-01"
    monkeypatch.setenv("COMPLIANCE_FIRST_PERIOD_MONTHLY", "2026-05-01")  # the process wins
    assert first_periods()["monthly"] == "2026-05-01"
