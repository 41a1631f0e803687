"""Row hashes are compatible with the source system; the chain catches edits and gaps."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from compliance_reports.audit.hashing import canonical_string, iso_millis, row_hash, verify_chain


def _row(i: int, **overrides):
    row = {
        "id": i,
        "timestamp": datetime(2026, 11, 27, 9, 15, 2, 123000, tzinfo=timezone.utc) + timedelta(seconds=i),
        "action": "fhir.patient.read",
        "organization_id": "org-1",
        "principal_id": "usr-dr-003",
        "status": "success",
        "target_resource_type": "Patient",
        "target_resource_id": "Patient/p-1",
        "outcome_description": "ok",
    }
    row.update(overrides)
    return row


def _chain(rows):
    prev = None
    for row in rows:
        row["hash"] = row_hash(row)
        row["prev_hash"] = prev
        prev = row["hash"]
    return rows


def test_canonical_string_matches_the_source_format_literally():
    row = _row(0, principal_id="", target_resource_id=None, outcome_description='Zoë "Å" <b>')
    expected = (
        'action:"fhir.patient.read"|organizationId:"org-1"|'
        'outcomeDescription:"Zoë \\"Å\\" <b>"|principalId:null|status:"success"|'
        'targetResourceId:null|targetResourceType:"Patient"|timestamp:"2026-11-27T09:15:02.123Z"'
    )
    assert canonical_string(row) == expected
    assert row_hash(row) == hashlib.sha256(expected.encode("utf-8")).hexdigest()


def test_timestamp_is_truncated_to_milliseconds_in_utc():
    plus_two = timezone(timedelta(hours=2))
    assert iso_millis(datetime(2026, 1, 2, 3, 4, 5, 678999, tzinfo=plus_two)) == "2026-01-02T01:04:05.678Z"


def test_control_characters_are_escaped_like_json_stringify():
    row = _row(0, outcome_description="line1\nline2\ttab\x01")
    assert 'outcomeDescription:"line1\\nline2\\ttab\\u0001"' in canonical_string(row)


def test_intact_chain_verifies():
    report = verify_chain(_chain([_row(i) for i in range(5)]))
    assert report.ok and report.verified == 5 and report.first_break is None


def test_altered_row_is_reported_as_content_change():
    rows = _chain([_row(i) for i in range(5)])
    rows[2]["outcome_description"] = "edited"
    report = verify_chain(rows)
    assert report.mismatched == 1
    assert report.first_break.event_id == 2 and report.first_break.kind == "content_changed"


def test_deleted_row_breaks_the_chain_at_its_successor():
    rows = _chain([_row(i) for i in range(5)])
    del rows[2]
    report = verify_chain(rows)
    assert report.mismatched == 0 and report.chain_breaks == 1
    assert report.first_break.event_id == 3 and report.first_break.kind == "chain_broken"


def test_unhashed_row_is_counted():
    rows = _chain([_row(i) for i in range(3)])
    rows[1]["hash"] = None
    report = verify_chain(rows)
    assert report.unhashed == 1 and not report.ok
