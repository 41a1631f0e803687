"""Fixtures of the report tests: the golden dataset on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from compliance_reports.config.models import ReportConfig
from compliance_reports_tests.reports.dataset import GOLDEN, load

GENERATED_AT = datetime(2026, 3, 12, 6, 0, tzinfo=timezone.utc)
GOLDEN_OPTIONS = {
    "top_n": 5,
    "failed_login_threshold": 3,
    "denied_access_threshold": 3,
    "bulk_access_threshold": 2,
    "distinct_patients_threshold": 2,
}


def golden_config(report_type: str, **overrides) -> ReportConfig:
    data = {
        "id": "golden",
        "name": "Golden report",
        "organization_id": "org-a",
        "report_type": report_type,
        "schedule": {"frequency": "daily", "timezone": "Europe/Berlin"},
        "options": dict(GOLDEN_OPTIONS),
    }
    data.update(overrides)
    return ReportConfig.model_validate(data)


@pytest.fixture(params=["sqlite", "postgresql"])
def golden_db(request):
    """A migrated database (SQLite, then PostgreSQL) holding the golden dataset."""
    engine = request.getfixturevalue("engine" if request.param == "sqlite" else "pg_engine")
    load(engine, GOLDEN)
    return engine


def section(document: dict, section_id: str) -> dict:
    for item in document["sections"]:
        if item["id"] == section_id:
            return item
    raise KeyError(f"no section {section_id!r} in {[s['id'] for s in document['sections']]}")


def facts(document: dict, section_id: str) -> dict:
    return {f["label"]: f["value"] for f in section(document, section_id)["facts"]}


def rows(document: dict, section_id: str) -> list[dict]:
    return section(document, section_id)["rows"]


def summary(document: dict) -> dict:
    return {s["label"]: s["value"] for s in document["summary"]}
