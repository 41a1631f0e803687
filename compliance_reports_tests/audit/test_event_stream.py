"""The canonical event line: the fast encoder equals the documented definition."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from compliance_reports.audit.event_stream import (
    EXPORT_COLUMNS,
    canonical_details,
    canonical_line,
    canonical_line_reference,
    events_digest,
    iso_micros,
)

text = st.one_of(st.none(), st.text(max_size=12))
records = st.fixed_dictionaries({
    "id": st.integers(min_value=1, max_value=2**62),
    "timestamp": st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9000, 1, 1),
                              timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30))])),
    **{name: text for name in EXPORT_COLUMNS if name not in ("id", "timestamp", "details")},
    "details": st.one_of(st.none(), st.dictionaries(st.text(max_size=5), st.one_of(
        st.integers(), st.text(max_size=5), st.booleans(), st.none()), max_size=4).map(canonical_details)),
})


@settings(max_examples=300, deadline=None)
@given(records)
def test_fast_canonical_line_equals_the_definition(record):
    assert canonical_line(record) == canonical_line_reference(record)


def test_canonical_line_literally():
    record = {name: None for name in EXPORT_COLUMNS}
    record.update(id=7, timestamp=datetime(2026, 3, 10, 9, 0, 0, 123000, tzinfo=timezone.utc),
                  action="fhir.patient.read", status="success", organization_id="org-a",
                  outcome_description='Zoë "x"\n', details=canonical_details({"b": 1, "a": "é"}))
    line = canonical_line(record)
    assert line == (
        '{"action":"fhir.patient.read","correlation_id":null,"data_classification":null,'
        '"details":"{\\"a\\":\\"é\\",\\"b\\":1}","hash":null,"id":7,"organization_id":"org-a",'
        '"outcome_description":"Zoë \\"x\\"\\n","prev_hash":null,"principal_id":null,'
        '"status":"success","target_resource_id":null,"target_resource_type":null,'
        '"timestamp":"2026-03-10T09:00:00.123000Z"}\n'
    ).encode("utf-8")
    assert events_digest([record]) == hashlib.sha256(line).hexdigest()
    assert events_digest([]) == hashlib.sha256(b"").hexdigest()


def test_iso_micros_is_utc_with_six_digits():
    plus_two = timezone(timedelta(hours=2))
    assert iso_micros(datetime(2026, 10, 25, 2, 30, tzinfo=plus_two)) == "2026-10-25T00:30:00.000000Z"
    assert json.loads(canonical_details('{"b": [1, 2], "a": null}')) == {"a": None, "b": [1, 2]}
    assert canonical_details('{"b": [1, 2], "a": null}') == '{"a":null,"b":[1,2]}'
