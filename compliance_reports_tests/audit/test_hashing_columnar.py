"""The columnar row hash, chain walk and canonical lines equal the per-row definitions."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance_reports.audit.event_stream import (
    EXPORT_COLUMNS,
    canonical_details,
    canonical_line,
    canonical_line_array,
    iso_micros,
)
from compliance_reports.audit.extract import WINDOW_COLUMNS
from compliance_reports.audit.hashing import (
    ChainWalk,
    canonical_string,
    canonical_string_array,
    json_string_array,
    js_json,
    row_hash,
    row_hash_array,
    verify_chain,
)

# What JSON.stringify escapes differently from a naive encoder: quotes, backslashes, every
# control character (short forms and \u00XX), and what it leaves alone: DEL, non-ASCII,
# U+2028/U+2029 (JSON.stringify keeps them raw, as Python's encoder does with ensure_ascii off).
AWKWARD = ['"', "\\", "\x00", "\x01", "\x08", "\t", "\n", "\x0b", "\x0c", "\r", "\x1f", "\x7f",
           "\u2028", "\u2029", "é", "Ω", "\u00a0", "😀", "/", "'", "|", ":"]
chars = st.one_of(st.characters(codec="utf-8"), st.sampled_from(AWKWARD))  # a database holds UTF-8
text = st.text(alphabet=chars, max_size=10)
maybe_text = st.one_of(st.none(), st.just(""), text)
zones = st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30)),
                         timezone(timedelta(hours=-8))])
timestamps = st.one_of(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=zones),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=zones)
    .map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)),  # milliseconds only
)
FIELDS = ("principal_id", "organization_id", "action", "target_resource_type", "target_resource_id",
          "status", "outcome_description")
rows = st.fixed_dictionaries(
    {"timestamp": timestamps},
    optional={name: maybe_text for name in FIELDS},  # a missing key hashes like None
)


def window_batch(rows: list[dict]) -> pa.RecordBatch:
    """Rows in the shape ``extract.window_batches`` yields (timestamp as UTC micros text)."""
    columns = {name: [r.get(name) for r in rows] for name in WINDOW_COLUMNS}
    columns["id"] = [r.get("id", i) for i, r in enumerate(rows)]
    columns["timestamp"] = [iso_micros(r["timestamp"]) for r in rows]
    columns["in_criteria"] = [1] * len(rows)
    types = {"id": pa.int64(), "in_criteria": pa.int8()}
    return pa.RecordBatch.from_arrays(
        [pa.array(columns[n], types.get(n, pa.string())) for n in WINDOW_COLUMNS], names=list(WINDOW_COLUMNS))


@settings(max_examples=300, deadline=None)
@given(st.lists(rows, min_size=1, max_size=12))
def test_columnar_row_hash_equals_row_hash(batch_rows):
    batch = window_batch(batch_rows)
    assert canonical_string_array(batch).to_pylist() == [canonical_string(r) for r in batch_rows]
    assert row_hash_array(batch).to_pylist() == [row_hash(r) for r in batch_rows]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), text), max_size=20), st.booleans())
def test_json_string_array_equals_js_json(values, null_when_empty):
    expected = [js_json(None if null_when_empty and v == "" else v) for v in values]
    assert json_string_array(pa.array(values, pa.string()), null_when_empty).to_pylist() == expected


def test_row_hash_array_on_a_known_row():
    row = {"timestamp": datetime(2026, 3, 1, 10, 0, 0, 123999, tzinfo=timezone.utc), "action": 'a"\u2028',
           "status": "success", "principal_id": "", "organization_id": "org\x01"}
    line = ('action:"a\\"\u2028"|organizationId:"org\\u0001"|outcomeDescription:null|principalId:null'
            '|status:"success"|targetResourceId:null|targetResourceType:null'
            '|timestamp:"2026-03-01T10:00:00.123Z"')
    assert canonical_string_array(window_batch([row])).to_pylist() == [line]
    assert row_hash_array(window_batch([row])).to_pylist() == [hashlib.sha256(line.encode()).hexdigest()]


# ------------------------------------------------------------------ chain


def chain_rows(draw_spec):
    """Rows with stored hash/prev_hash per spec: hash intact/altered/missing/empty, link
    intact/wrong/missing."""
    rows, prev = [], None
    for i, (hash_kind, link_kind) in enumerate(draw_spec):
        row = {"id": i + 1, "timestamp": datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=i),
               "action": "a", "status": "s", "organization_id": "o"}
        stored = {"ok": row_hash(row), "altered": "f" * 64, "missing": None, "empty": ""}[hash_kind]
        row["hash"] = stored
        row["prev_hash"] = {"ok": prev, "wrong": "0" * 64, "missing": None}[link_kind]
        prev = stored if stored else None
        rows.append(row)
    return rows


specs = st.lists(st.tuples(st.sampled_from(["ok", "ok", "altered", "missing", "empty"]),
                           st.sampled_from(["ok", "ok", "wrong", "missing"])), max_size=25)


@settings(max_examples=300, deadline=None)
@given(specs, st.sampled_from([None, "0" * 64, "e" * 64]), st.booleans(),
       st.lists(st.integers(min_value=1, max_value=8), max_size=6), st.integers(min_value=1, max_value=6))
def test_chain_walk_by_batches_equals_verify_chain(spec, expected_prev, check_first, cuts, max_breaks):
    rows = chain_rows(spec)
    expected = verify_chain(rows, expected_prev=expected_prev, check_first_link=check_first,
                            max_breaks=max_breaks)
    walk = ChainWalk(expected_prev=expected_prev, check_first_link=check_first, max_breaks=max_breaks)
    start = 0
    for size in [*cuts, len(rows)]:  # batches of random sizes, some empty
        part = rows[start:start + size]
        start += size
        batch = window_batch(part)
        verified = walk.add(batch, row_hash_array(batch))
        assert verified.to_pylist() == [bool(r["hash"]) and row_hash(r) == r["hash"] for r in part]
    assert walk.report == expected


# ------------------------------------------------------------------ canonical lines

details = st.one_of(st.none(), st.dictionaries(text, st.one_of(st.integers(), text, st.booleans(), st.none()),
                                               max_size=3).map(canonical_details))
records = st.fixed_dictionaries({
    "id": st.integers(min_value=-2**63, max_value=2**63 - 1),
    "timestamp": timestamps,
    **{name: st.one_of(st.none(), text) for name in EXPORT_COLUMNS if name not in ("id", "timestamp", "details")},
    "details": details,
})


@settings(max_examples=300, deadline=None)
@given(st.lists(records, max_size=8))
def test_canonical_line_array_equals_canonical_line(batch_records):
    columns = {name: pa.array([r[name] for r in batch_records], pa.int64() if name == "id" else pa.string())
               for name in EXPORT_COLUMNS if name != "timestamp"}
    columns["timestamp"] = pa.array([iso_micros(r["timestamp"]) for r in batch_records], pa.string())
    lines = canonical_line_array(columns)
    assert [line.encode("utf-8") for line in lines.to_pylist()] == [canonical_line(r) for r in batch_records]


# ------------------------------------------------------------------ details as stored

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
              st.floats(allow_nan=False, allow_infinity=False), text),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(text, children, max_size=4)),
    max_leaves=12)
# How a database may hand the JSON back: jsonb's ", " and ": ", compact, indented, escaped.
layouts = st.sampled_from([{"separators": (", ", ": ")}, {"separators": (",", ":")}, {"indent": 1},
                           {"ensure_ascii": True}])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.none(), st.tuples(json_values, layouts, st.sampled_from(["", " ", "\n "]))),
                max_size=10))
def test_details_arrays_equal_the_row_by_row_canonical_details(items):
    """The batch path (the json module's C scanner and encoder, quoting in Arrow) gives what
    the row-by-row definition gives: json.loads, then the sorted compact encoder."""
    import json
    from json.encoder import encode_basestring

    from compliance_reports.audit.event_stream import _canonical_details_arrays

    texts = [None if item is None else item[2] + json.dumps(item[0], **item[1]) + item[2] for item in items]
    canonical, quoted = _canonical_details_arrays(pa.array(texts, pa.string()))
    expected = [None if t is None or json.loads(t) is None else canonical_details(t) for t in texts]
    assert canonical.to_pylist() == expected
    assert quoted.to_pylist() == ["null" if c is None else encode_basestring(c) for c in expected]


def test_details_that_are_not_json_are_refused_as_before():
    import json

    import pytest

    from compliance_reports.audit.event_stream import _canonical_details_arrays

    for bad in ("{", '{"a": 1} x', "", "nul", "[1,]"):
        with pytest.raises(json.JSONDecodeError):
            json.loads(bad)
        with pytest.raises(json.JSONDecodeError):
            _canonical_details_arrays(pa.array([bad], pa.string()))
