"""`compliance-reports doctor`: each failure on its own line with its fix; exit 0 only when all pass."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from compliance_reports.cli.main import main
from compliance_reports.config import store as config_store
from compliance_reports.config.models import parse_destination


@pytest.fixture
def env(engine, sqlite_url, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPLIANCE_DB_URL", sqlite_url)
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COMPLIANCE_MANIFEST_KEY", "m" * 32)
    monkeypatch.setenv("COMPLIANCE_CHECKPOINT_KEY", "c" * 32)
    return engine


def _doctor(*args):
    return CliRunner().invoke(main, ["doctor", "--no-daemon", *args], catch_exceptions=False)


def test_all_checks_pass_with_migrated_databases_and_set_variables(env, monkeypatch, http_factory):
    hook = http_factory()
    monkeypatch.setenv("HOOK_SECRET", "s3cr3t-value")
    config_store.apply_destinations(
        env, [parse_destination({"name": "hook", "type": "webhook", "url": hook.url, "signing_secret_env": "HOOK_SECRET",
                                 "allow_private_network": True})]
    )
    result = _doctor("--network")
    assert result.exit_code == 0, result.output
    assert "signing_secret_env variable HOOK_SECRET is set" in result.output
    assert "reachable" in result.output and "0 failed" in result.output
    assert "s3cr3t-value" not in result.output


def test_missing_variable_and_unreachable_peer_fail_with_a_fix(env):
    config_store.apply_destinations(
        env,
        [parse_destination({"name": "mail", "type": "email", "host": "127.0.0.1", "port": 1,
                            "security": "none", "from": "a@example.org", "to": ["b@example.org"],
                            "username": "u", "password_env": "MAIL_PASSWORD_NOT_SET"})],
    )
    result = _doctor("--network")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    missing = next(i for i, line in enumerate(lines) if "MAIL_PASSWORD_NOT_SET, which is not set" in line)
    assert lines[missing].startswith("FAIL") and "fix: export MAIL_PASSWORD_NOT_SET" in lines[missing + 1]
    assert any(line.startswith("FAIL") and "SMTP 127.0.0.1:1 unreachable" in line for line in lines)


def test_unmigrated_database_fails_with_upgrade_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPLIANCE_DB_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.delenv("AUDIT_DB_URL", raising=False)
    result = _doctor()
    assert result.exit_code == 1
    assert "fix: run `compliance-reports db upgrade`" in result.output


def test_daemon_without_heartbeat_fails(env, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    result = CliRunner().invoke(main, ["doctor"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "no daemon has sent a heartbeat" in result.output


def test_malformed_keys_fail_and_name_the_variable(env, monkeypatch):
    from compliance_reports.config.models import ReportConfig

    report = ReportConfig.model_validate({
        "id": "r-keys", "name": "keys", "organization_id": "org-1", "report_type": "custom",
        "schedule": {"frequency": "daily"}, "formats": ["csv"],
        "export": {"encrypt": True, "encryption_key_env": "CR_DOCTOR_KEY", "redact_identifiers": True},
    })
    config_store.apply_reports(env, [report])
    monkeypatch.setenv("CR_DOCTOR_KEY", "!!!!" + 43 * "A" + "$$$")
    monkeypatch.setenv("COMPLIANCE_CHECKPOINT_KEY", "c\udcff")
    result = _doctor()
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    assert any("report r-keys" in line and "CR_DOCTOR_KEY" in line and "32-byte" in line for line in failed)
    assert any("report r-keys" in line and "redact_identifiers" in line for line in failed)
    assert any("COMPLIANCE_CHECKPOINT_KEY is not valid UTF-8" in line for line in failed)
def test_alert_fallback_must_name_a_destination_that_carries_alerts(env, monkeypatch, tmp_path):
    result = _doctor()
    assert f"alerts no channel can carry are written to {tmp_path / 'alerts.log'}" in result.output
    monkeypatch.setenv("COMPLIANCE_ALERT_FALLBACK", "pager")
    result = _doctor()
    assert result.exit_code == 1
    assert "COMPLIANCE_ALERT_FALLBACK names pager, which does not exist" in result.output
    config_store.apply_destinations(env, [parse_destination(
        {"name": "pager", "type": "storage", "provider": "local", "base_path": "p"})])
    assert "a storage destination that cannot carry alerts" in _doctor().output
