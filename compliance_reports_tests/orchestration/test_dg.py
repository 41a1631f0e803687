"""The `dg` way works next to the make targets: `dg check defs` and `dg list defs` load the code
location from [tool.dg] in pyproject.toml (so CI covers it through this test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DG = Path(sys.executable).parent / "dg"


@pytest.fixture
def dg_env(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "COMPLIANCE_DATA_DIR": str(tmp_path / "data"),
           "PYTHONPATH": str(REPO)}
    env.pop("COMPLIANCE_ENV_FILE", None)
    return env


def _dg(env, *args: str) -> subprocess.CompletedProcess:
    assert DG.exists(), f"{DG} missing: install the dev extra (dagster-dg-cli)"
    return subprocess.run([str(DG), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_dg_check_defs_passes(dg_env):
    result = _dg(dg_env, "check", "defs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout + result.stderr


def test_dg_list_defs_shows_the_named_jobs_and_the_audit_log_check(dg_env):
    result = _dg(dg_env, "list", "defs", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    jobs = {j["name"] for j in listed["jobs"]}
    assert {f"{f}_reports_job" for f in ("daily", "weekly", "monthly", "quarterly")} <= jobs
    assert "audit_log:organizations_not_silent" in {c["key"] for c in listed["asset_checks"]}
    schedules = {s["name"] for s in listed["schedules"]}
    assert {"daily_reports_schedule", "audit_log_check_schedule"} <= schedules
