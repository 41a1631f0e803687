"""The content fingerprint: equal for two runs of a period over the same rows, different when
the content changes; the volatile list of reports/document.py is exactly what it ignores."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from compliance_reports.audit.integrity import commit_checkpoint
from compliance_reports.reports import document as rd
from compliance_reports.reports.builder import build_report
from compliance_reports_tests.exporters.sample import sample_document
from compliance_reports_tests.reports.conftest import GENERATED_AT, golden_config
from compliance_reports_tests.reports.dataset import GOLDEN, insert_rows, make_rows

PERIOD = "2026-03-10"
REPORT_TYPES = ["general_compliance", "hipaa_audit_trail", "gdpr_processing_activities",
                "integrity_verification", "custom"]
KEY = b"checkpoint-key-0123456789abcdef"


def _build(engine, report_type, run_id, hours_later=0):
    """One successful run: the report built, then the checkpoint it signed stored."""
    result = build_report(engine, engine, golden_config(report_type), PERIOD, run_id=run_id,
                          generated_at=GENERATED_AT + timedelta(hours=hours_later),
                          checkpoint_key=KEY, sign_checkpoint=True)
    commit_checkpoint(engine, result.integrity)
    return result.document


@pytest.mark.parametrize("report_type", REPORT_TYPES)
def test_a_rerun_over_the_same_rows_has_the_same_fingerprint(golden_db, report_type):
    # the first run writes the period's checkpoint, the second finds it: only bookkeeping differs
    first = _build(golden_db, report_type, "run-1")
    second = _build(golden_db, report_type, "run-2", hours_later=5)
    assert rd.document_sha256(first) != rd.document_sha256(second)
    assert rd.content_fingerprint(first) == rd.content_fingerprint(second)


def test_changed_rows_change_the_fingerprint(engine):
    insert_rows(engine, make_rows(GOLDEN))
    before = _build(engine, "general_compliance", "run-1")
    late = (9001, "org-a", "2026-03-10T15:00:00Z", "late-user", "auth.login", None, None, "failure",
            "INTERNAL", None)
    insert_rows(engine, make_rows([late]))  # an event that arrived after the first run
    after = _build(engine, "general_compliance", "run-2")
    assert rd.content_fingerprint(before) != rd.content_fingerprint(after)


def test_the_volatile_list_is_exactly_what_is_ignored():
    doc = sample_document()
    base = rd.content_fingerprint(doc)
    for field in rd.HEADER_FIELDS:
        changed = copy.deepcopy(doc)
        changed["header"][field] = "something else"
        assert (rd.content_fingerprint(changed) == base) == (field in rd.VOLATILE_HEADER_FIELDS), field
    reissued = rd.with_reissue(doc, "run-0", "ab" * 32, "cd" * 32)
    assert reissued["reissue_of"] == {"run_id": "run-0", "manifest_sha256": "ab" * 32,
                                      "content_fingerprint": "cd" * 32}
    assert reissued["sections"][0]["id"] == rd.REISSUE_SECTION_ID
    assert "re-issued" in reissued["sections"][0]["paragraphs"][0] and "run-0" in reissued["sections"][0]["paragraphs"][0]
    assert rd.content_fingerprint(reissued) == base
    assert rd.content_fingerprint(rd.with_reissue(reissued, "run-1", "ef" * 32, base)) == base

    bookkeeping = copy.deepcopy(doc)
    bookkeeping["sections"][0]["facts"].append({"label": "Previous checkpoint", "value": "7: consistent"})
    bookkeeping["sections"].append(rd.facts(rd.CHECKPOINT_SECTION_ID, "Checkpoints", [("id", 7)]))
    bookkeeping["sections"].append(rd.findings("notes", "Notes", [
        rd.finding("info", rd.CHECKPOINT_NOTE_CODE, "Note", "checkpoint 7 already records this window", [])]))
    bookkeeping["data"]["integrity"] = {"verdict": "VERIFIED", "checkpoint_written": {"id": 8}}
    bookkeeping["data"]["notes"] = ["x"]
    with_verdict = copy.deepcopy(bookkeeping)
    assert rd.content_fingerprint(bookkeeping) != base  # the notes section and integrity verdict are new
    del bookkeeping["data"]["integrity"]["checkpoint_written"]
    bookkeeping["sections"][0]["facts"].pop()
    assert rd.content_fingerprint(with_verdict) == rd.content_fingerprint(bookkeeping)

    for mutate in (
        lambda d: d["summary"][0].update(value=1),
        lambda d: d["sections"][0]["facts"].append({"label": "Reviewer", "value": "x"}),
        lambda d: d["sections"][1]["rows"].pop(),
        lambda d: d["data"].update(extra=1),
        lambda d: d.update(schema_version="2.0"),
    ):
        changed = copy.deepcopy(doc)
        mutate(changed)
        assert rd.content_fingerprint(changed) != base
