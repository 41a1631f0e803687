"""Page 1 (``executive_summary``) and the reading order (``layout``) of every report type, on the
golden dataset; finding counts are recomputed from the rules' own findings in ``data``."""

from __future__ import annotations

import pytest

from compliance_reports.reports.builder import build_report
from compliance_reports.reports.document import SEVERITIES
from compliance_reports_tests.reports.conftest import GENERATED_AT, golden_config

PERIOD = "2026-03-10"
TYPES = ["general_compliance", "hipaa_audit_trail", "gdpr_processing_activities",
         "integrity_verification", "custom"]


def document(engine, report_type, **overrides):
    return build_report(engine, engine, golden_config(report_type, **overrides), PERIOD,
                        run_id="run-1", generated_at=GENERATED_AT).document


def rules_by_severity(raw_findings):
    """One per code, at the code's most severe level: what page 1 must count."""
    worst: dict[str, str] = {}
    for f in raw_findings:
        if f["code"].endswith("_more"):
            continue
        current = worst.get(f["code"])
        if current is None or SEVERITIES.index(f["severity"]) < SEVERITIES.index(current):
            worst[f["code"]] = f["severity"]
    return {s: sum(1 for v in worst.values() if v == s) for s in SEVERITIES}


@pytest.mark.parametrize("report_type", TYPES)
def test_page_one_of_every_type(engine, report_type):
    from compliance_reports_tests.reports.dataset import GOLDEN, load

    load(engine, GOLDEN)
    doc = document(engine, report_type)
    es = doc["executive_summary"]
    assert es["period_label"] == "10 March 2026" and es["timezone"] == "Europe/Berlin"
    assert es["window_utc"] == "2026-03-09T23:00:00Z to 2026-03-10T23:00:00Z"
    assert es["integrity"]["verdict"] == "VERIFIED"
    assert es["integrity"]["reason"] == "all 28 row(s) in the window verified and the chain is intact"
    assert es["coverage"] == {"status": "complete", "text": "complete; longest silence 3.5 h",
                              "longest_silence_hours": 3.5, "findings": 0}
    # headline: the summary without the verdict items, comparison included
    labels = [item["label"] for item in es["headline"]]
    assert not {"Integrity", "Verdict", "Coverage", "Longest silence (hours)"} & set(labels)
    assert es["headline"] == [i for i in doc["summary"] if i["label"] in labels]
    assert any("change" in item for item in es["headline"])
    # the event export is always named, with the events' digest
    assert es["details"][-1]["section_id"] is None
    assert doc["header"]["events_sha256"] in es["details"][-1]["what"]
    # reading order: findings, charts, analysis, attestation, appendices
    kinds = [("appendix" if s.get("appendix") else s["kind"]) for s in doc["sections"]]
    order = {"findings": 0, "chart": 1, "attestation": 3, "appendix": 4}
    ranks = [order.get(k, 2) for k in kinds]
    assert ranks == sorted(ranks), kinds
    assert kinds[0] == "findings" and "chart" in kinds
    # the charts index names every chart section with its alt text
    assert doc["charts"] == [{"id": s["id"], "title": s["title"], "alt": s["alt"]}
                             for s in doc["sections"] if s["kind"] == "chart"]


def test_hipaa_findings_are_counted_per_rule(golden_db):
    doc = document(golden_db, "hipaa_audit_trail")
    found = doc["executive_summary"]["findings"]
    counts = rules_by_severity(doc["data"]["anomalies"])
    assert counts == {"critical": 0, "warning": 6, "info": 0}
    assert {k: found[k] for k in SEVERITIES} == counts and found["total"] == 6
    assert [(t["severity"], t["title"], t["section_id"]) for t in found["top"]] == [
        ("warning", "Repeated failed logins: usr-2", "anomalies"),
        ("warning", "After-hours PHI access", "anomalies"),
        ("warning", "Bulk exports", "anomalies"),
        ("warning", "Bulk PHI reads: 2 principals or resources", "anomalies"),
        ("warning", "Many distinct patients: 3 principals or resources", "anomalies"),
    ]
    details = {d["section_id"]: d["what"] for d in doc["executive_summary"]["details"]}
    assert details["anomalies"] == "6 findings, each with its evidence event ids"
    assert details["chart_activity"] == "4 charts of the period"
    assert details["disclosures"] == "the complete list, 1 rows"
    assert details["privileged_changes"] == "2 rows"
    # appendices: the event listings and the accounting of disclosures, after the attestation
    ids = [s["id"] for s in doc["sections"]]
    assert ids[-4:] == ["privileged_changes", "emergency_access", "bulk_exports", "disclosures"]
    assert ids.index("attestation") == len(ids) - 5


def test_gdpr_critical_findings_come_first(golden_db):
    doc = document(golden_db, "gdpr_processing_activities")
    found = doc["executive_summary"]["findings"]
    counts = rules_by_severity(doc["data"]["findings"])
    assert counts == {"critical": 2, "warning": 3, "info": 0}
    assert {k: found[k] for k in SEVERITIES} == counts
    assert [t["severity"] for t in found["top"]] == ["critical"] * 2 + ["warning"] * 3
    assert found["top"][0]["title"] == "Data-subject requests open past the deadline"
