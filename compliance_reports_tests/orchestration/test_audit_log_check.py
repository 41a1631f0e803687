"""audit_log observed by its hourly check job on a real instance: row count, newest event per
organization, and a warning when an organization's log has gone silent."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterEventType, instance_for_test
from sqlalchemy import func, select

from compliance_reports.db.schema import audit_log
from compliance_reports.demo.seed import SeedOptions, seed_audit_log
from compliance_reports_tests.orchestration.helpers import location_for_tests


@pytest.fixture
def seeded(engine):
    # Two organizations whose last events are three days old.
    end = datetime.now(timezone.utc).date() - timedelta(days=3)
    seed_audit_log(engine, SeedOptions(orgs=2, days=2, events_per_day=40, seed=3, end_date=end))
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
        orgs = sorted(r[0] for r in conn.execute(select(audit_log.c.organization_id).distinct()))
    return rows, orgs


def _check(defs, instance):
    result = defs.resolve_job_def("audit_log_check_job").execute_in_process(instance=instance)
    assert result.success
    [evaluation] = [e.event_specific_data for e in result.all_events
                    if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION]
    return evaluation


def test_observation_counts_rows_and_the_check_warns_on_silent_organizations(engine, seeded, sqlite_url):
    rows, orgs = seeded
    defs = location_for_tests(sqlite_url)
    with instance_for_test() as instance:
        evaluation = _check(defs, instance)
        assert evaluation.asset_check_key == AssetCheckKey(AssetKey("audit_log"), "organizations_not_silent")
        assert evaluation.passed is False and evaluation.severity.value == "WARN"
        assert evaluation.metadata["silent_organizations"].value == orgs
        assert all(org in evaluation.description for org in orgs)

        [observation] = instance.fetch_observations(AssetKey("audit_log"), limit=5).records
        meta = observation.asset_observation.metadata
        assert meta["dagster/row_count"].value == rows
        table = meta["per_organization"].records
        assert [r.data["organization_id"] for r in table] == orgs
        assert sum(r.data["rows"] for r in table) == rows
        assert all(r.data["silent_hours"] > 48 for r in table)


def test_a_longer_silence_limit_passes(engine, seeded, sqlite_url, monkeypatch):
    monkeypatch.setenv("COMPLIANCE_AUDIT_SILENCE_HOURS", str(24 * 30))
    defs = location_for_tests(sqlite_url)
    with instance_for_test() as instance:
        evaluation = _check(defs, instance)
        assert evaluation.passed is True
        assert evaluation.metadata["silence_limit_hours"].value == 720
