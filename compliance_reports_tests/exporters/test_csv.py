"""CSV export: RFC 4180 via the csv module, formula guard, typed values."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance_reports.exporters import csv_exporter
from compliance_reports.exporters.csv_exporter import neutralise, unguard, write_document_csv, write_events_csv
from compliance_reports.audit.hashing import iso_millis
from compliance_reports_tests.exporters.sample import FORMULA, sample_document, sample_events, write_events

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def _read(path):
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), "no BOM"
    text = raw.decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline=""))), raw


def test_events_csv_values_round_trip(tmp_path):
    events = write_events(tmp_path / "e.parquet", n=40, row_group_size=7)
    out = tmp_path / "e.csv"
    assert write_events_csv(events, out, batch_rows=9) == 40
    rows, raw = _read(out)
    assert raw.count(b"\r\n") >= 41 and b"\r\n" in raw
    header, data = rows[0], rows[1:]
    assert header == [f.name for f in pq.read_schema(events)]
    assert len(data) == 40
    expected = sample_events(40)
    for got, want in zip(data, expected):
        record = dict(zip(header, got))
        assert record["id"] == str(want["id"])
        assert record["timestamp"] == iso_millis(want["timestamp"])
        assert record["timestamp"].endswith("Z") and len(record["timestamp"]) == 24
        for key in ("principal_id", "action", "outcome_description", "target_resource_id", "hash"):
            value = want[key]
            assert unguard(record[key]) == ("" if value is None else value), key
        if want["details"] is None:
            assert record["details"] == ""
        else:
            assert json.loads(record["details"]) == json.loads(want["details"])
            # compact JSON, non-ASCII kept
            assert json.dumps(json.loads(record["details"]), separators=(",", ":"), ensure_ascii=False) == record["details"]


def test_formula_cells_are_neutralised(tmp_path):
    events = write_events(tmp_path / "e.parquet", n=40)
    out = tmp_path / "e.csv"
    write_events_csv(events, out)
    rows, _ = _read(out)
    cells = [cell for row in rows for cell in row]
    assert "'" + FORMULA in cells
    assert "'@import" in cells and "'+SUM(A1:A2)" in cells and "'-2+3" in cells
    assert "'\tindented" in cells and "'\rcarriage" in cells
    assert "'=HYPERLINK(\"x\")" in cells
    for cell in cells:
        assert not cell.startswith(DANGEROUS), repr(cell)


def test_negative_numbers_in_typed_columns_are_not_changed(tmp_path):
    table = pa.table({"id": pa.array([-5, 7], pa.int64()), "latency": pa.array([-1.5, None]),
                      "ok": pa.array([True, False]), "text": pa.array(["-5", None])})
    pq.write_table(table, tmp_path / "n.parquet")
    write_events_csv(tmp_path / "n.parquet", tmp_path / "n.csv")
    assert (tmp_path / "n.csv").read_bytes() == b"id,latency,ok,text\r\n-5,-1.5,true,'-5\r\n7,,false,\r\n"


def test_timestamps_of_other_units_and_naive_are_utc_millis(tmp_path):
    from datetime import datetime

    table = pa.table({
        "ns": pa.array([1_764_231_302_123_999_999], pa.timestamp("ns", tz="UTC")),
        "naive": pa.array([datetime(2026, 11, 27, 9, 15, 2, 123999)], pa.timestamp("us")),
        "berlin": pa.array([datetime(2026, 11, 27, 9, 15, 2, 5000)], pa.timestamp("us", tz="Europe/Berlin")),
    })
    pq.write_table(table, tmp_path / "t.parquet")
    write_events_csv(tmp_path / "t.parquet", tmp_path / "t.csv")
    rows, _ = _read(tmp_path / "t.csv")
    assert rows[1][1] == "2026-11-27T09:15:02.123Z"
    assert rows[1][0].endswith(".123Z")
    # Arrow stores zone-aware timestamps as UTC instants: the text is the UTC time
    assert rows[1][2] == "2026-11-27T09:15:02.005Z"


def test_document_csv_is_long_form_and_guarded(tmp_path):
    out = tmp_path / "doc.csv"
    document = sample_document()
    n = write_document_csv(document, out)
    rows, raw = _read(out)
    assert rows[0] == list(csv_exporter.FLAT_COLUMNS)
    assert len(rows) == n + 1
    by_key = {(r[0], int(r[3]), r[4]): r[6] for r in rows[1:]}
    assert by_key[("summary", 1, "value")] == "48213"
    assert by_key[("summary", 5, "value")] == "true"
    assert by_key[("access-by-user", 1, "user")] == "'" + FORMULA
    assert by_key[("access-by-user", 1, "accesses")] == "1000"
    assert by_key[("access-by-user", 1, "last_seen")] == ""
    assert by_key[("scope", 3, "value")] == "'" + FORMULA
    assert by_key[("findings", 1, "evidence_event_ids")] == "1001 1002 1003"
    assert by_key[("phi-by-resource", 5, "resource_type")] == "Ωbservation"
    assert not any(r[0] in ("method", "attest") for r in rows[1:])
    for row in rows:
        for cell in row:
            assert not cell.startswith(DANGEROUS)


def test_empty_events_file_gives_header_only(tmp_path):
    from compliance_reports_tests.exporters.sample import EVENT_SCHEMA

    pq.write_table(EVENT_SCHEMA.empty_table(), tmp_path / "empty.parquet")
    write_events_csv(tmp_path / "empty.parquet", tmp_path / "empty.csv")
    rows, _ = _read(tmp_path / "empty.csv")
    assert rows == [[f.name for f in EVENT_SCHEMA]]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.text(alphabet="'=+-@\t\r\n\",ab ", max_size=6),
), min_size=1, max_size=8))
def test_any_text_round_trips_through_csv_except_the_guard(tmp_path_factory, values):
    folder = tmp_path_factory.mktemp("hyp")
    pq.write_table(pa.table({"v": pa.array(values, pa.string()), "n": pa.array(range(len(values)))}),
                   folder / "h.parquet")
    write_events_csv(folder / "h.parquet", folder / "h.csv")
    rows, _ = _read(folder / "h.csv")
    assert [r[0] for r in rows[1:]] == [neutralise(v) for v in values]
    assert [unguard(r[0]) for r in rows[1:]] == values


_cell_text = st.one_of(
    st.none(),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=10),
    st.text(alphabet="'=+-@\t\r\n\", ab", max_size=6),
)


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=4).flatmap(
    lambda k: st.lists(st.lists(_cell_text, min_size=k, max_size=k), min_size=1, max_size=6)))
def test_vectorised_writer_equals_the_csv_module(tmp_path_factory, rows):
    """The Arrow-built records are byte for byte what csv.writer(QUOTE_MINIMAL) writes."""
    folder = tmp_path_factory.mktemp("eq")
    names = [f"c{i}" for i in range(len(rows[0]))]
    table = pa.table({name: pa.array([r[i] for r in rows], pa.string()) for i, name in enumerate(names)})
    pq.write_table(table, folder / "t.parquet")
    write_events_csv(folder / "t.parquet", folder / "t.csv")
    expected = io.StringIO(newline="")
    writer = csv.writer(expected, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(names)
    writer.writerows([[neutralise(v) for v in r] for r in rows])
    assert (folder / "t.csv").read_bytes() == expected.getvalue().encode("utf-8")
